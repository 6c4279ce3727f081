"""Simulation only: reference models, bus-functional models, protocol checkers, test
harnesses and the DDR model. Nothing here is synthesised; ``hw/`` holds what is."""
