"""The transaction trace: records from a short pysim run (and, with ``--compiled``, from the
compiled backends), the same cycles with and without it, its file format, and the timeline
picture drawn from it."""

import json
import xml.etree.ElementTree as ElementTree

import pytest
from amaranth.hdl import Shape

from dmabuf_soc.hw.soc import Soc
from dmabuf_soc.hw.unused import never_elaborated
from dmabuf_soc.sim.trace.probes import Channel, payload_member, probe_port_layout
from dmabuf_soc.sw.machine.backends import available_backends, simulate
from dmabuf_soc.sw.trace import spans
from dmabuf_soc.sw.trace.record import Run, read_jsonl, write_jsonl

from trace_runs import short_story

COMPILED = available_backends()[1:]


def test_recording_changes_no_cycle(pysim_trace):
    result, _ = pysim_trace
    assert simulate(short_story, backend="pysim") == result


def test_records_of_a_short_run(pysim_trace):
    result, trace = pysim_trace
    run, = trace.runs
    records = trace.records()
    header = records[0]
    assert header["kind"] == "run" and header["end"] == result["cycle"]
    kinds = {(r["kind"], r.get("port") or r.get("layer") or r.get("name")) for r in records}
    for expected in [("axi", "dma0"), ("axi", "memory"), ("axi", "cache"), ("mmio", "mmio"),
                     ("span", "scenario"), ("mark", "fence"), ("level", "irq")]:
        assert expected in kinds
    for record in records:
        if record["kind"] == "axi":
            assert record["start"] <= record["first"] <= record["last"]
            assert record["bytes"] == record["beats"] * 8
            if record["dir"] == "write":
                assert record["last"] < record["end"]
    # The DMA wrote the two pages into the high bank (and its descriptors' status words).
    dma = [r for r in records if r["kind"] == "axi" and r["port"] == "dma0"]
    assert sum(r["bytes"] for r in dma if r["dir"] == "write" and r["addr"] >= 1 << 32) \
        == 2048
    # The CPU's 128-byte store is one record, made of its 16 port words.
    store, = [r for r in records if r["kind"] == "cpu" and r["dir"] == "store"
              and r["addr"] == 0x8001_0000]
    assert store["bytes"] == 128 and store["start"] < store["end"]
    names = [r["name"] for r in records if r["kind"] == "span"]
    assert names == ["cpu_fill", "dma", "read_back"]


def test_probe_port_is_a_register_per_channel():
    soc = never_elaborated(Soc(probes=True))
    channels, levels = soc.probes
    members = dict(soc.probe.signature.members)
    assert Shape.cast(members["handshake"].shape).width == len(channels)
    for channel in channels:
        name = payload_member(channel)
        if name is None:
            assert not channel.fields
            continue
        # The compiled monitor takes payloads of up to 64 bits, one port each.
        assert Shape.cast(members[name].shape).width == len(channel.payload) <= 64
    assert Shape.cast(members["levels"].shape).width == sum(width for _, width
                                                 in probe_port_layout(channels, levels)[1])


def test_assembly_pairs_interleaved_reads_and_early_writes():
    fields = {"ar": (("addr", 40), ("len", 8), ("id", 4)), "aw": (("addr", 40), ("len", 8),
                                                                 ("id", 4)),
              "w": (("last", 1),), "r": (("id", 4), ("resp", 2), ("last", 1)),
              "b": (("id", 4), ("resp", 2))}
    channels = [Channel("bus", name, "axi4", None, None, None, fields[name])
                for name in ("ar", "aw", "w", "r", "b")]

    def pack(name, **values):
        bits, shift = 0, 0
        for field, width in fields[name]:
            bits |= values.get(field, 0) << shift
            shift += width
        return bits

    run = Run(0, "test", channels, [], bytes_per_beat=8)
    index = {name: n for n, name in enumerate(("ar", "aw", "w", "r", "b"))}
    run.events = [
        (1, index["ar"], pack("ar", addr=0x100, len=3, id=1)),
        (2, index["ar"], pack("ar", addr=0x200, len=0, id=2)),
        (5, index["r"], pack("r", id=1)),                       # first beat of id 1
        (6, index["r"], pack("r", id=2, resp=2, last=1)),       # id 2's only beat, SLVERR
        (8, index["r"], pack("r", id=1, last=1)),
        (3, index["w"], pack("w")),                             # W before its AW
        (4, index["w"], pack("w", last=1)),
        (4, index["aw"], pack("aw", addr=0x300, len=1, id=0)),
        (9, index["b"], pack("b", id=0)),
    ]
    records = run.records()[1:]
    reads = {r["addr"]: r for r in records if r["dir"] == "read"}
    assert (reads[0x100]["first"], reads[0x100]["last"], reads[0x100]["bytes"]) == (5, 8, 32)
    assert (reads[0x200]["first"], reads[0x200]["resp"]) == (6, "SLVERR")
    write, = [r for r in records if r["dir"] == "write"]
    assert (write["first"], write["last"], write["end"], write["beats"]) == (3, 4, 9, 2)


def test_jsonl_round_trip(tmp_path, pysim_trace):
    _, trace = pysim_trace
    path = tmp_path / "trace.jsonl"
    write_jsonl(trace.records(), path)
    assert read_jsonl(path) == json.loads(json.dumps(trace.records()))
    (tmp_path / "other.jsonl").write_text('{"kind": "something"}\n')
    with pytest.raises(ValueError, match="not a dmabuf-soc trace"):
        read_jsonl(tmp_path / "other.jsonl")


def test_timeline_picture(tmp_path, pysim_trace):
    pytest.importorskip("matplotlib")
    from PIL import Image
    from dmabuf_soc.sw.trace.timeline import render
    _, trace = pysim_trace
    records = trace.records()
    data, = render(records, tmp_path / "t.svg", title="short story")
    assert list(data["lanes"])[:2] == ["stages", "fence"]
    assert {"cpu", "mmio", "cache", "dma0", "memory", "irq"} <= set(data["lanes"])
    ids = {element.get("id") for element in ElementTree.parse(tmp_path / "t.svg").iter()}
    for lane in ("lane-dma0-read", "lane-dma0-write", "lane-memory-read", "lane-cpu-write",
                 "lane-fence-mark", "stage-cpu_fill", "stage-dma", "stage-read_back"):
        assert lane in ids
    render(records, tmp_path / "t.png")
    with Image.open(tmp_path / "t.png") as image:
        width, height = image.size
        assert 800 <= width <= 3000 and 400 <= height <= 2000
        colours = image.convert("RGB").getcolors(1 << 20)
        assert len(colours) > 20            # bars, shades, text: not a blank page
    with pytest.raises(ValueError, match="PNG or SVG"):
        render(records, tmp_path / "t.gif")


@pytest.mark.slow
@pytest.mark.skipif(not COMPILED, reason="the compiled backends are off (--compiled)")
@pytest.mark.parametrize("backend", COMPILED)
def test_compiled_records_as_pysim(backend, pysim_trace):
    result, trace = pysim_trace
    with spans.recording() as compiled:
        assert simulate(short_story, backend=backend) == result
    assert simulate(short_story, backend=backend) == result

    def strip(records):
        return [{k: v for k, v in record.items() if k != "backend"} for record in records]
    assert strip(compiled.records()) == strip(trace.records())


def _random_events(channels, levels, rng, cycles=3000):
    """Events as a monitor keeps them, on ``channels`` and ``levels``: bursts of few IDs that
    interleave, data before or without its address, responses without a request."""
    events = []
    for cycle in range(cycles):
        for _ in range(rng.choice((0, 0, 1, 1, 2))):
            index = rng.randrange(len(channels) + len(levels))
            if index >= len(channels):
                level = levels[index - len(channels)]
                events.append((cycle, index, rng.randrange(1 << min(len(level.signal), 3))))
                continue
            values = {"addr": rng.randrange(1 << 12), "len": rng.randrange(3),
                      "id": rng.randrange(2), "resp": rng.randrange(4),
                      "last": rng.random() < 0.5}
            bits, shift = 0, 0
            for name, width in channels[index].fields:
                bits |= int(values[name]) << shift
                shift += width
            events.append((cycle, index, bits))
    return events


@pytest.mark.slow
@pytest.mark.skipif(not COMPILED, reason="the compiled backends are off (--compiled)")
@pytest.mark.parametrize("backend", COMPILED)
def test_compiled_pairing_as_python(backend):
    import random

    import numpy as np
    from dmabuf_soc.sw.machine.compiled.machine import CompiledMachine
    from dmabuf_soc.sw.trace.record import Trace

    trace = Trace()
    with CompiledMachine(backend, trace=trace) as machine:
        run = machine.run
        events = _random_events(run.channels, run.levels, random.Random(33))
        flat = np.array(events, dtype=np.uint64).reshape(-1)
        machine._lib.machine_monitor_feed(machine._handle, flat.ctypes.data, len(events))
        machine.collect()
    python = Run(1, "pysim", run.channels, run.levels, bytes_per_beat=run.bytes_per_beat)
    python.events = events
    rows = python.transactions()
    assert len(rows) > 500
    assert run.transactions().tolist() == rows.tolist()
