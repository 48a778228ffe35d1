"""The protocol version every party and the coordinator must agree on."""

PROTOCOL_VERSION = "splitrec.v1"
