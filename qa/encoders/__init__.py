"""Text encoders: a base class for what every backend shares, one module per backend's forward pass."""
