"""The model families (DeepFM, Wide & Deep, DNN), their layers and compiled steps."""
