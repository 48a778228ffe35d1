"""The centralized baseline: every party's base and the fuse model in one process."""
