"""Every side effect of a conference call: calls and SMS through the carrier, email over SMTP."""
