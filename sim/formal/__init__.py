"""Formal verification: property sets of the SoC's interfaces (:mod:`.properties`), the
blocks' proof harnesses (:mod:`.blocks`) and the SymbiYosys runner behind ``dmabuf-soc
formal`` (:mod:`.runner`). ``docs/formal.md`` describes them and their results."""
