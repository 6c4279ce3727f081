"""A GTKWave save file for a VCD of the SoC: its signals grouped per block and per AXI
channel, under readable names.

The groups come from the VCD's own declarations (:func:`vcd_signals`), so the file fits the
waveform of any backend: pysim names a signal by its place in the hierarchy, the compiled
models by the flattened name yosys gave it. Each port signal of the SoC or of one of its
blocks whose name holds a channel (``<port>__<channel>__<member>``: the valid, ready and
payload of an AXI channel or of a CPU port stream) goes to the group of its block, and in it
to the group of its port and channel; the SoC's clock, cycle counter and interrupt lines
come first.
"""

import re
from collections import defaultdict

__all__ = ["vcd_signals", "gtkw_text", "write_gtkw"]

_CHANNEL = re.compile(r"^(?P<port>.*?)__(?P<channel>aw|w|b|ar|r|req|rsp)__(?P<member>.+)$")
_KEEP_MEMBERS = ("valid", "ready", "payload")


def vcd_signals(path):
    """The signals a VCD declares: ``(scopes, name, width)`` each, ``scopes`` a tuple."""
    scopes, out = [], []
    with open(path, errors="replace") as file:
        for line in file:
            words = line.split()
            if not words:
                continue
            if words[0] == "$scope":
                scopes.append(words[2])
            elif words[0] == "$upscope":
                scopes.pop()
            elif words[0] == "$var":
                name = " ".join(words[4:words.index("$end")])
                name = re.sub(r"\s*\[\d+(:\d+)?\]$", "", name)
                out.append((tuple(scopes), name, int(words[2])))
            elif words[0] == "$enddefinitions":
                break
    return out


def _place(scopes, name):
    """``(block, leaf)`` of a signal: the block is the SoC's submodule the signal is a port
    of (``""`` for the SoC's own ports), ``None`` for a signal deeper in the hierarchy. A
    flattened name (``cache.bus__ar__valid``, the compiled models') counts as its parts."""
    leaf = name.lstrip("\\")
    # The top's scope: the last of the first three named so (Verilator nests ``soc`` in
    # ``soc``); none, and the top's signals are at the root.
    root = max((index for index, part in enumerate(scopes[:3]) if part in ("top", "soc")),
               default=-1)
    if root + 1 < len(scopes):
        inner = scopes[root + 1:]
        if len(inner) == 1 and not inner[0].startswith("link_"):
            return inner[0], leaf
        return None, leaf
    pieces = [part for part in re.split(r"[.\s]", leaf) if part]
    if len(pieces) == 1:
        return "", leaf
    if len(pieces) == 2 and not pieces[0].startswith("link_") and \
            _CHANNEL.match(pieces[1]) is not None:
        return pieces[0], pieces[1]
    return None, leaf


def gtkw_text(vcd_path, signals):
    """The save file's text for the VCD ``vcd_path`` declaring ``signals``
    (:func:`vcd_signals`)."""
    top, groups = [], defaultdict(lambda: defaultdict(list))
    seen = set()
    for scopes, raw, width in signals:
        block, leaf = _place(scopes, raw)
        name = ".".join([*scopes, raw])
        if block is None or (block, leaf) in seen:
            continue
        seen.add((block, leaf))
        if block == "" and leaf in ("clk", "cycle", "irq"):
            top.append((name, width, leaf))
            continue
        match = _CHANNEL.match(leaf)
        if match is None or re.split(r"__|\.", match["member"])[0] not in _KEEP_MEMBERS:
            continue
        label = (f"{block + '.' if block else ''}{match['port']}.{match['channel']}."
                 f"{match['member'].replace('__', '.')}")
        groups[block or "soc ports"][f"{match['port']} {match['channel'].upper()}"].append(
            (name, width, label))
    lines = ["[*] dmabuf-soc: signals per block and AXI channel",
             f'[dumpfile] "{vcd_path}"', "[timestart] 0"]

    def signal(name, width, label):
        lines.append("@28" if width == 1 else "@22")
        lines.append(f"+{{{label}}} {name}" if width == 1 else
                     f"+{{{label}}} {name}[{width - 1}:0]")

    for name, width, label in top:
        signal(name, width, label)
    members = {"valid": 0, "ready": 1}
    for group in sorted(groups):
        lines += ["@800200", f"-{group}"]
        for channel in sorted(groups[group]):
            lines += ["@800200", f"-{channel}"]
            for name, width, label in sorted(groups[group][channel],
                                             key=lambda s: members.get(s[2].split(".")[-1], 2)):
                signal(name, width, label)
            lines += ["@1000200", f"-{channel}"]
        lines += ["@1000200", f"-{group}"]
    return "\n".join(lines) + "\n"


def write_gtkw(vcd_path, gtkw_path):
    """Write the save file of the VCD ``vcd_path`` to ``gtkw_path`` (it names the VCD by its
    file name, so that the two open together from their folder); returns the number of
    signals it shows."""
    from pathlib import Path
    text = gtkw_text(Path(vcd_path).name, vcd_signals(vcd_path))
    Path(gtkw_path).write_text(text)
    return sum(line.startswith("+{") for line in text.splitlines())
