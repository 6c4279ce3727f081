"""The cache's reference model, and a driver and a monitor of its ports for testbenches."""
