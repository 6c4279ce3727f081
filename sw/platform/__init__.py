"""The platform: booting a simulated SoC into the kernel-side objects, and the driver of its
identification block."""
