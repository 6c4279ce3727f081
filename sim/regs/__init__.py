"""The reference model of a register block generated from SystemRDL."""
