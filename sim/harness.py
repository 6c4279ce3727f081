"""What the block harnesses share: a block in Amaranth's simulator, run by a testbench."""

__all__ = ["Harness"]


class Harness:
    """A block under test in Amaranth's simulator with its bus models and checkers.

    A subclass builds the design and its models and keeps the simulator as ``self.sim``;
    :meth:`run` runs a testbench on it.
    """
    sim = None

    def run(self, testbench, *, vcd=None):
        """Run ``async testbench(ctx)`` to its end, writing a waveform to ``vcd`` if given."""
        self.sim.add_testbench(testbench)
        if vcd:
            with self.sim.write_vcd(vcd):
                self.sim.run()
        else:
            self.sim.run()
