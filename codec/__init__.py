"""Nothing personal in clear in Temporal: the payload codec every client and worker encrypts
with (`codec.aes`), and the codec server through which the Web UI and the CLI read it back
(`codec.server`, `python -m codec`)."""
