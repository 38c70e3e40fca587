"""The embedded stack: Temporal dev server, worker, callback server, carrier simulator and
local mailbox on loopback, for `make run`, `make stack` and drills. No account, no Docker."""
