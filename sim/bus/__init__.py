"""Bus-functional models of AXI4 and AXI4-Lite for async Amaranth testbenches,
and the protocol checkers (:mod:`.checker`).

* :class:`~.memory.ReferenceMemory` — sparse byte-addressed memory and what an AXI burst does to
  it; the reference model every memory-side block is checked against.
* :func:`~.lite.lite_read`, :func:`~.lite.lite_write` — one AXI4-Lite access, awaited from a
  testbench.
* :class:`~.manager.AXI4Manager` — issues read and write bursts with several outstanding, random
  valid/ready gaps, and collects responses by ID.
* :class:`~.subordinate.AXI4Subordinate` — answers bursts from a :class:`ReferenceMemory`, with
  latency, random gaps, reordering across IDs and injected errors.
* :class:`~.lite.AXI4LiteSubordinate` — answers AXI4-Lite accesses from a :class:`ReferenceMemory`.

The models are clocked: each registers one simulator process (``model.add_to(sim)``) that wakes
on every active edge, samples the port, and drives its outputs for the next cycle, like a
register would. They drive raw payload bits through :class:`PayloadCodec` rather than through
:class:`~amaranth.lib.data.View` objects, which keeps long random runs fast::

    memory  = ReferenceMemory()
    manager = AXI4Manager(dut.managers[0], rng=random.Random(1), valid_gap=0.2)
    memory_model = AXI4Subordinate(dut.subordinates[0], memory, read_latency=5)
    manager.add_to(sim)
    memory_model.add_to(sim)

    async def testbench(ctx):
        write = manager.write(0x8000_0000, [0x1122334455667788, 0x99], id=3)
        read  = manager.read(0x8000_0000, len=1, id=3)
        await manager.wait(ctx, write, read)
        assert read.data == [0x1122334455667788, 0x99]
"""
