"""A local SMTP server for the embedded stack and the tests: every email becomes an .eml file."""
