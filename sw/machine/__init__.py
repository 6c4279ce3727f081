"""Simulation backends: the machine interface the driver is written against."""
