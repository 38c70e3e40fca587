"""What a conference call is made of: contacts, alert scheme, messages, roster. No I/O here."""
