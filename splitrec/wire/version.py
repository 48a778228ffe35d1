"""The protocol version every party and the coordinator must agree on."""

PROTOCOL_VERSION = "splitrec.v1"

# The project's release (pyproject.toml's ``version``), recorded in exported
# models.
PROJECT_VERSION = "0.1.0"
