"""Simulation-only transaction tracing: what the trace watches in the SoC (:mod:`.probes`)."""
