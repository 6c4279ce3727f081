"""Amaranth gateware of dmabuf-soc."""
