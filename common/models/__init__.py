"""Split DeepFM: base models per party, the fuse model, and their compiled steps."""
