"""The thin, signed relay between the carrier and the workflows."""
