"""The HTML report of a traced command (``--report DIR``): one self-contained page,
``index.html``, with everything it shows in its folder.

The folder holds the page; the timeline as SVG (inlined in the page) and PNG; the stage
table and every counter of the command's report; for a comparison (``bench share``'s three
ways of moving a buffer) a bar chart, inlined too; the register map (PeakRDL's HTML, in
``registers/``); the trace itself (``trace.jsonl``); and the waveform (``waves.vcd``) with a
GTKWave save file (``waves.gtkw``, :mod:`.gtkw`) when the run wrote one. Nothing is fetched
from the network when the page is viewed.
"""

import html
import json
from pathlib import Path

__all__ = ["write_report", "comparison_chart"]

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; max-width: 80em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.figure svg { max-width: 100%; height: auto; }
code { font-size: 0.95em; }
"""


def _inline_svg(path):
    """The SVG of ``path`` without its XML prologue, to put in a page."""
    text = Path(path).read_text()
    return text[text.index("<svg"):]


def comparison_chart(comparison, path, *, title):
    """Draw ``comparison`` (bar name to cycles) as a horizontal bar chart into ``path``."""
    from .timeline import require_matplotlib
    Figure = require_matplotlib()
    names = list(comparison)
    figure = Figure(figsize=(7, 0.6 + 0.5 * len(names)), dpi=110, layout="constrained")
    axes = figure.add_subplot()
    bars = axes.barh(names, [comparison[name] for name in names], color="#1f77b4")
    axes.bar_label(bars, labels=[f"{comparison[name]:,}" for name in names], fontsize=8,
                   padding=3)
    axes.invert_yaxis()
    axes.set_xlabel("cycles")
    axes.set_title(title, fontsize=10)
    axes.margins(x=0.15)
    figure.savefig(path)


def _flat(prefix, value, rows):
    if isinstance(value, dict):
        for key, item in value.items():
            _flat(f"{prefix}.{key}" if prefix else str(key), item, rows)
    else:
        rows.append((prefix, value))


def _table(rows, header=("", "")):
    out = ["<table>", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"]
    for key, value in rows:
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        text = f"{value:,}" if number else (json.dumps(value) if isinstance(value, list)
                                            else str(value))
        cell = '<td class="n">' if number else "<td>"
        out.append(f"<tr><td>{html.escape(str(key))}</td>{cell}{html.escape(text)}</td></tr>")
    out.append("</table>")
    return "\n".join(out)


def _stages(records):
    rows = []
    for record in records:
        if record["kind"] == "span" and record["layer"] == "scenario":
            rows.append((record["run"] + 1, record["name"], record["start"],
                         record["end"] - record["start"]))
    return rows


def write_report(folder, records, result, *, title, panels=None, comparison=None, vcd=None):
    """Write the report of trace ``records`` and the command's ``result`` into ``folder``;
    returns the page's path.

    Parameters
    ----------
    panels : list of Panel, optional
        The timeline's panels (:func:`~.timeline.render`).
    comparison : dict, optional
        Bar name to cycles, drawn as a bar chart.
    vcd : path, optional
        The waveform in ``folder``; a GTKWave save file is written beside it.
    """
    from ..regs.export import export
    from .gtkw import write_gtkw
    from .timeline import render
    folder = Path(folder)
    folder.mkdir(exist_ok=True)
    render(records, folder / "timeline.svg", panels=panels, title=title)
    render(records, folder / "timeline.png", panels=panels, title=title)
    export("html", folder / "registers")
    parts = [f"<h1>{html.escape(title)}</h1>"]
    runs = [record for record in records if record["kind"] == "run"]
    parts.append("<p>" + "; ".join(
        f"run {run['run'] + 1}: {html.escape(run['title'])}, {run['end'] - run['start']:,} "
        f"cycles" for run in runs) + ".</p>")
    parts += ["<h2>Timeline</h2>",
              "<p>One lane per driver layer and per bus manager; reads in the upper half of "
              "a lane, writes in the lower; SMMU walks green, cache maintenance purple, faults "
              "red crosses; stages shaded. Underneath, bytes per cycle of each port. "
              "<a href=\"timeline.png\">PNG</a>, <a href=\"timeline.svg\">SVG</a>.</p>",
              f"<div class=\"figure\">{_inline_svg(folder / 'timeline.svg')}</div>"]
    if comparison:
        comparison_chart(comparison, folder / "comparison.svg", title=title)
        parts += ["<h2>Comparison</h2>",
                  f"<div class=\"figure\">{_inline_svg(folder / 'comparison.svg')}</div>"]
    stages = _stages(records)
    if stages:
        parts += ["<h2>Stages</h2>", "<table><tr><th>run</th><th>stage</th><th>from cycle</th>"
                  "<th>cycles</th></tr>"]
        parts += [f"<tr><td class=\"n\">{run}</td><td>{html.escape(name)}</td>"
                  f"<td class=\"n\">{start:,}</td><td class=\"n\">{cycles:,}</td></tr>"
                  for run, name, start, cycles in stages]
        parts.append("</table>")
    rows = []
    _flat("", result, rows)
    parts += ["<h2>Counters and figures</h2>", _table(rows, ("field", "value"))]
    parts += ["<h2>Files</h2>", "<ul>",
              "<li><a href=\"registers/index.html\">Register map</a> (generated from the "
              "SystemRDL)</li>",
              "<li><a href=\"trace.jsonl\">trace.jsonl</a>: every transaction, span and "
              "mark, one JSON object a line (docs/timeline.md)</li>"]
    if vcd is not None:
        shown = write_gtkw(vcd, folder / "waves.gtkw")
        name = html.escape(Path(vcd).name)
        parts.append(f"<li><a href=\"{name}\">{name}</a> and <a href=\"waves.gtkw\">"
                     f"waves.gtkw</a> ({shown} signals, grouped per block and channel): "
                     f"<code>gtkwave waves.gtkw</code></li>")
    parts.append("</ul>")
    page = folder / "index.html"
    page.write_text("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                    f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
                    f"<body>\n" + "\n".join(parts) + "\n</body></html>\n")
    return page
