"""Everything that runs on the CPU: simulation backends, Linux-like driver layers, CLI."""
