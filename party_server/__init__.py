"""The party process: its data slice, its models, and the gRPC services it serves."""
