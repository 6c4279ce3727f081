"""The CPU side of the data cache: the driver of its maintenance registers."""
