"""The timeline picture of a trace: where the cycles go, lane by lane.

One lane per driver layer (the scenario's stages, the dma-buf calls, the fence signals, the
CPU's loads and stores) and per bus manager (the register port, the cache, each DMA
channel's IOVA bus, the SMMU's translated ports and its table walker, external managers, the
memory side), and the interrupt lines. Transactions are bars (reads in the upper half of a
lane, writes in the lower), SMMU walks and cache maintenance are bars of their own colour,
faults are marked, the scenario's stages are shaded across every lane. Underneath, the bytes
per cycle of each bus port, averaged over bins.

Bars closer than a pixel are merged and the throughput is binned, so a run of millions of
cycles draws as fast as a short one. matplotlib (the ``timeline`` extra) draws it: PNG or
SVG by the file's extension. In an SVG, every lane's group has the id ``lane-<name>`` and
every stage's shading ``stage-<name>``.
"""

from collections import defaultdict
from pathlib import Path

import numpy as np

__all__ = ["FORMATS", "Panel", "panels_of_runs", "lane_data", "render", "check_path",
           "require_matplotlib"]

#: The picture formats, by file extension.
FORMATS = (".png", ".svg")
#: Horizontal resolution the bars are merged at, and the throughput's bins, per panel.
_PIXELS = 1600
_BINS = 400

#: The driver lanes, top to bottom (the bus lanes follow, in the trace's port order).
_DRIVER_LANES = ("stages", "dma-buf", "fence", "cpu")
_COLOURS = {"read": "#1f77b4", "write": "#ff7f0e", "walk": "#2ca02c", "maintenance": "#9467bd",
            "fault": "#d62728", "irq": "#8c564b", "span": "#7f7f7f", "mark": "#d62728",
            "mmio": "#17becf"}
_STAGE_SHADES = ("#fff3c4", "#dbeeff", "#e4f5df", "#f6e0f0", "#eeeeee")


class Panel:
    """A window of a run to draw: ``title``, the :class:`~.record.Run` index ``run``, and
    the cycles from ``start`` to ``end``."""
    def __init__(self, title, run, start, end):
        if not isinstance(start, int) or not isinstance(end, int) or end < start:
            raise ValueError(f"Panel cycles must be integers with start <= end, not "
                             f"{start!r}..{end!r}")
        self.title, self.run, self.start, self.end = title, run, start, end


def require_matplotlib():
    """Import matplotlib's figure module, or raise :exc:`RuntimeError` naming the extra that
    installs it."""
    try:
        import matplotlib
        matplotlib.use("Agg", force=False)
        from matplotlib.figure import Figure
    except ImportError:
        raise RuntimeError("the timeline needs matplotlib: pip install "
                           "'dmabuf-soc[timeline]' (or matplotlib)") from None
    return Figure


def check_path(path):
    """:exc:`ValueError` unless ``path`` names a picture format of :data:`FORMATS`."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"timeline {path}: the picture is PNG or SVG (by the extension), "
                         f"not {suffix or 'no extension'!r}")
    return suffix


def panels_of_runs(records):
    """One :class:`Panel` per run of ``records``, the whole run."""
    return [Panel(record.get("title") or f"run {record['run']}", record["run"],
                  record["start"], record["end"])
            for record in records if record["kind"] == "run"]


def _intervals_of_levels(records, name, end, *, bit=None):
    """The ``(start, end)`` intervals in which level ``name`` (one ``bit`` of it) was set."""
    out, since = [], None
    for record in records:
        if record["kind"] != "level" or record["name"] != name:
            continue
        value = record["value"] if bit is None else (record["value"] >> bit) & 1
        if value and since is None:
            since = record["cycle"]
        elif not value and since is not None:
            out.append((since, record["cycle"]))
            since = None
    if since is not None:
        out.append((since, end))
    return out


def _merge(intervals, resolution):
    """``intervals`` sorted and merged where they overlap or are closer than
    ``resolution`` cycles."""
    merged = []
    for start, end in sorted(intervals):
        if merged and start - merged[-1][1] <= resolution:
            if end > merged[-1][1]:
                merged[-1][1] = end
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


def lane_data(records, panel):
    """What the picture of ``panel`` shows, from the records of its run: a dict of lane name
    to ``{"bars": {style: [(start, end)]}, "marks": {style: [cycle]}, "labels": [(start,
    end, text)]}`` in lane order, ``"stages"`` (the stage spans) and ``"throughput"`` (per
    bus port, an array of bytes per cycle over bins of the panel, at least 16 cycles each and at
    most ``_BINS``, whose bounds are ``"edges"``)."""
    run = [record for record in records if record.get("run") == panel.run]
    header = next(record for record in run if record["kind"] == "run")
    lo, hi = panel.start, max(panel.end, panel.start + 1)
    resolution = (hi - lo) / _PIXELS

    def inside(start, end):
        return end >= lo and start <= hi

    lanes = {name: {"bars": defaultdict(list), "marks": defaultdict(list), "labels": []}
             for name in (*_DRIVER_LANES, "mmio", *header["ports"], "irq")}
    stages = []
    flow = defaultdict(list)          # port → (first, last, bytes per cycle) of its beats
    for record in run:
        kind = record["kind"]
        if kind == "span":
            if not inside(record["start"], record["end"]):
                continue
            if record["layer"] == "scenario":
                stages.append((record["start"], record["end"], record["name"]))
            else:
                lane = lanes.setdefault(record["layer"], {"bars": defaultdict(list),
                                                          "marks": defaultdict(list),
                                                          "labels": []})
                lane["bars"]["span"].append((record["start"], record["end"]))
                lane["labels"].append((record["start"], record["end"], record["name"]))
        elif kind == "mark":
            if lo <= record["cycle"] <= hi:
                lane = lanes.setdefault(record["layer"], {"bars": defaultdict(list),
                                                          "marks": defaultdict(list),
                                                          "labels": []})
                lane["marks"]["mark"].append(record["cycle"])
        elif kind == "cpu":
            if inside(record["start"], record["end"]):
                lanes["cpu"]["bars"]["read" if record["dir"] == "load" else "write"].append(
                    (record["start"], record["end"]))
        elif kind == "mmio":
            if inside(record["start"], record["end"]):
                lanes["mmio"]["bars"]["read" if record["dir"] == "read" else "write"].append(
                    (record["start"], record["end"]))
        elif kind == "axi":
            end = record["end"] if record["dir"] == "write" else record["last"]
            first, last = record["first"], record["last"]
            if not inside(record["start"], end):
                continue
            lanes[record["port"]]["bars"][record["dir"]].append((record["start"], end))
            if record["resp"] not in ("OKAY", "EXOKAY"):
                lanes[record["port"]]["marks"]["fault"].append(end)
            # Bytes spread evenly over the data beats' cycles.
            a, b = max(first, lo) - lo, min(last, hi) - lo
            if b >= a:
                flow[record["port"]].append((a, b, record["bytes"] / (last - first + 1)))
    for start, end in _intervals_of_levels(run, "smmu_walk", header["end"]):
        if inside(start, end):
            lanes["smmu_table"]["bars"]["walk"].append((start, end))
    for start, _ in _intervals_of_levels(run, "smmu_fault", header["end"]):
        if lo <= start <= hi:
            lanes["smmu_table"]["marks"]["fault"].append(start)
    for start, end in _intervals_of_levels(run, "cache_maintenance", header["end"]):
        if inside(start, end):
            lanes["cache"]["bars"]["maintenance"].append((start, end))
    irq_lines = set()
    for record in run:
        if record["kind"] == "level" and record["name"] == "irq":
            irq_lines |= {bit for bit in range(record["value"].bit_length())
                          if record["value"] >> bit & 1}
    for bit in sorted(irq_lines):
        for start, end in _intervals_of_levels(run, "irq", header["end"], bit=bit):
            if inside(start, end):
                lanes["irq"]["bars"]["irq"].append((start, end))
                lanes["irq"]["labels"].append((start, end, str(bit)))
    for lane in lanes.values():
        for style, bars in lane["bars"].items():
            lane["bars"][style] = _merge(bars, resolution)
    throughput = {}
    bins = max(1, min(_BINS, (hi - lo + 1) // 16))
    edges = np.linspace(0, hi - lo + 1, bins + 1).astype(np.int64)
    for port, beats in flow.items():
        beats = np.array(beats)
        deltas = np.zeros(hi - lo + 2)
        np.add.at(deltas, beats[:, 0].astype(np.int64), beats[:, 2])
        np.add.at(deltas, beats[:, 1].astype(np.int64) + 1, -beats[:, 2])
        per_cycle = np.cumsum(deltas)[:hi - lo + 1]
        sums = np.add.reduceat(per_cycle, edges[:-1])
        widths = np.maximum(np.diff(edges), 1)
        throughput[port] = sums / widths
    empty = [name for name, lane in lanes.items()
             if not any(lane["bars"].values()) and not any(lane["marks"].values())
             and not (name == "stages" and stages)]
    for name in empty:
        del lanes[name]
    return {"lanes": lanes, "stages": sorted(stages), "throughput": throughput,
            "edges": edges + lo}


def _draw_panel(axes, flow_axes, data, panel, width):
    lanes = data["lanes"]
    names = list(lanes)
    y = {name: len(names) - 1 - index for index, name in enumerate(names)}
    for index, (start, end, name) in enumerate(data["stages"]):
        shade = _STAGE_SHADES[index % len(_STAGE_SHADES)]
        for ax in (axes, flow_axes):
            patch = ax.axvspan(start - panel.start, max(end, start + 1) - panel.start,
                               color=shade, zorder=0, linewidth=0)
            patch.set_gid(f"stage-{name}")
        if "stages" in y:
            axes.text((start + end) / 2 - panel.start,
                      y["stages"] + (0.22 if index % 2 else -0.22),
                      name, ha="center", va="center", fontsize=6.5, clip_on=True)
    for name, lane in lanes.items():
        row = y[name]
        halves = {"read": (row + 0.02, 0.43), "write": (row - 0.45, 0.43)}
        for style, bars in lane["bars"].items():
            if not bars:
                continue
            base, height = halves.get(style, (row - 0.3, 0.6))
            collection = axes.broken_barh(
                [(start - panel.start, max(end - start, 2 * width / _PIXELS))
                 for start, end in bars],
                (base, height), facecolors=_COLOURS.get(style, "#7f7f7f"), linewidth=0)
            collection.set_gid(f"lane-{name}-{style}")
        for style, cycles in lane["marks"].items():
            if cycles:
                marker = "x" if style == "fault" else "v"
                line, = axes.plot([c - panel.start for c in cycles], [row] * len(cycles),
                                  linestyle="none", marker=marker, markersize=6,
                                  color=_COLOURS[style])
                line.set_gid(f"lane-{name}-{style}")
        if name not in ("stages", "cpu") and len(lane["labels"]) <= 60:
            free = None                   # where the last label ended: labels never overlap
            for start, end, text in sorted(lane["labels"]):
                if (end - start) > width / 25 and (free is None or start >= free):
                    axes.text((start + end) / 2 - panel.start, row, text, ha="center",
                              va="center", fontsize=6, clip_on=True)
                    free = end
    axes.set_yticks([y[name] for name in names], names, fontsize=8)
    axes.set_ylim(-0.6, len(names) - 0.4)
    axes.set_xlim(0, width)
    axes.set_title(panel.title, fontsize=9)
    axes.grid(axis="x", linewidth=0.3)
    centres = (data["edges"][:-1] + data["edges"][1:]) / 2 - panel.start
    for port, values in data["throughput"].items():
        flow_axes.plot(centres, values, linewidth=0.9, label=port)
    flow_axes.set_xlim(0, width)
    flow_axes.set_xlabel("cycles" + (f" from {panel.start}" if panel.start else ""),
                         fontsize=8)
    flow_axes.tick_params(labelsize=7)
    axes.tick_params(axis="x", labelsize=7)
    if data["throughput"]:
        # Room above the highest bin for the legend, so that it hides no line.
        top = max(float(values.max()) for values in data["throughput"].values())
        flow_axes.set_ylim(0, max(top, 1.0) * 1.5)
        flow_axes.legend(fontsize=6, ncol=min(len(data["throughput"]), 5), loc="upper right")


def render(records, path, *, panels=None, title=None):
    """Draw the timeline of trace ``records`` into ``path`` (PNG or SVG, by its extension):
    one column per :class:`Panel` (default: one per run), all on the same cycle scale, so
    that side by side their lengths compare. Returns the :func:`lane_data` of each panel."""
    suffix = check_path(path)
    Figure = require_matplotlib()
    panels = panels_of_runs(records) if panels is None else list(panels)
    if not panels:
        raise ValueError("The trace holds no run to draw")
    data = [lane_data(records, panel) for panel in panels]
    width = max(panel.end - panel.start for panel in panels) or 1
    rows = max(len(d["lanes"]) for d in data)
    figure = Figure(figsize=(max(8.0, 5.0 * len(panels)), 1.6 + 0.32 * rows + 1.6),
                    dpi=110, layout="constrained")
    grid = figure.add_gridspec(2, len(panels), height_ratios=(0.32 * rows + 0.4, 1.4))
    for column, (panel, panel_data) in enumerate(zip(panels, data)):
        axes = figure.add_subplot(grid[0, column])
        flow_axes = figure.add_subplot(grid[1, column], sharex=axes)
        _draw_panel(axes, flow_axes, panel_data, panel, width)
        if column == 0:
            flow_axes.set_ylabel("bytes/cycle", fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.savefig(path, format=suffix[1:])
    return data
