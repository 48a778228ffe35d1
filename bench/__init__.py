"""The benchmark: split training against the centralized baseline (``make bench``)."""
