"""Procedures: alert schemes and multi-step procedures defined in files, and their launch forms."""
