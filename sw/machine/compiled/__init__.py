"""What the compiled backends share: the design they start from, the build cache, the driver
loops (``driver.cc``) and the machine that calls them (:class:`.machine.CompiledMachine`)."""
