"""The job driver: handshake, epochs and step windows, evaluation, reports."""
