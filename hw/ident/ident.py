"""The identification block: a generated register block with its build constants wired in."""

import re
from importlib import metadata
from pathlib import Path

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from ..bus.axi import AXI4LiteSignature
from ..config import SocConfig
from ..regs.block import RegisterBlock
from ..regs.compile import compile_rdl
from ..regs.spec import block_spec

__all__ = ["IDENT_RDL", "ident_spec", "package_version", "Ident"]

#: The SystemRDL description of the block.
IDENT_RDL = Path(__file__).resolve().parent / "ident.rdl"


def ident_spec():
    """The :class:`~dmabuf_soc.hw.regs.spec.BlockSpec` of ``ident.rdl`` (offsets from 0)."""
    return block_spec(compile_rdl(IDENT_RDL, top="ident"))


def package_version():
    """``(major, minor, patch)`` of the installed dmabuf-soc package."""
    version = metadata.version("dmabuf-soc")
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    if match is None:
        raise ValueError(f"Cannot parse the package version {version!r}")
    return tuple(int(part or 0) for part in match.groups())


class Ident(wiring.Component):
    """Identification registers: ``ID``, ``VERSION``, ``SCRATCH``, ``CONFIG``, ``MEMORY``
    (see ``ident.rdl``), answering on an AXI4-Lite port.

    Parameters
    ----------
    config : SocConfig or None
        The build whose parameters ``CONFIG`` and ``MEMORY`` report (the default
        configuration if ``None``).
    version : tuple of int or None
        ``(major, minor, patch)`` reported by ``VERSION``; the package's version if
        ``None``.

    Members
    -------
    bus : ``In(AXI4LiteSignature(addr_width=12, data_width=32))``
        Offsets within the block's 4 KiB window.
    """
    def __init__(self, config=None, *, version=None):
        if config is None:
            config = SocConfig()
        if not isinstance(config, SocConfig):
            raise TypeError(f"Expected a SocConfig, not {config!r}")
        if version is None:
            version = package_version()
        if (not isinstance(version, tuple) or len(version) != 3 or
                not all(isinstance(part, int) for part in version)):
            raise TypeError(f"Version must be a (major, minor, patch) tuple of integers, "
                            f"not {version!r}")
        self._spec = ident_spec()
        self._constants = {
            ("VERSION", "major"): version[0],
            ("VERSION", "minor"): version[1],
            ("VERSION", "patch"): version[2],
            ("CONFIG", "data_width"): config.data_width,
            ("CONFIG", "addr_width"): config.addr_width,
            ("CONFIG", "sid_width"): config.sid_width,
            ("MEMORY", "banks"): len(config.banks),
            ("MEMORY", "mmio_addr_width"): config.mmio_addr_width,
        }
        for (register, field), value in self._constants.items():
            width = self._spec.register(register).field(field).width
            if not 0 <= value < 1 << width:
                raise ValueError(f"{register}.{field} is {width} bits wide; {value!r} does "
                                 f"not fit")
        self.config = config
        self.version = version
        super().__init__({
            "bus": In(AXI4LiteSignature(addr_width=self._spec.addr_width, data_width=32)),
        })

    @property
    def spec(self):
        return self._spec

    def elaborate(self, platform):
        m = Module()
        m.submodules.regs = regs = RegisterBlock(self._spec)
        wiring.connect(m, wiring.flipped(self.bus), regs.bus)
        for (register, field), value in self._constants.items():
            m.d.comb += getattr(regs.register_interface(register), field).d.eq(value)
        return m
