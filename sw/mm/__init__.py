"""Memory management: physical pages, zones, CMA and carveout ranges, kernel mappings."""
