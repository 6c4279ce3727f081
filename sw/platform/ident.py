"""Driver of the identification block: is this the SoC we expect, and how was it built?"""

import errno
from dataclasses import dataclass

from ..errors import KernelError
from ..regs.bank import RegisterBank
from ..regs.map import register_map

__all__ = ["SOC_ID", "SocIdentity", "probe"]

#: What the ``ID`` register reads on a dmabuf-soc ('DMAB' in ASCII): its reset value in the RDL.
SOC_ID = register_map()["ident"].register("ID").reset


@dataclass(frozen=True)
class SocIdentity:
    """What the identification block says about the SoC."""
    version: tuple
    data_width: int
    addr_width: int
    sid_width: int
    banks: int
    mmio_addr_width: int


async def probe(machine):
    """Read the identification block; raises ``ENODEV`` if the ``ID`` register does not
    identify a dmabuf-soc, and ``EIO`` if the scratch register does not hold what is written
    to it (a broken register bus)."""
    ident = RegisterBank(machine, "ident")
    soc_id = await ident.read("ID")
    if soc_id != SOC_ID:
        raise KernelError(errno.ENODEV, f"ID register reads {soc_id:#010x}, not "
                                               f"{SOC_ID:#010x}: not a dmabuf-soc")
    for pattern in (0xA5A5_5A5A, 0x5A5A_A5A5):
        await ident.write("SCRATCH", pattern)
        readback = await ident.read("SCRATCH")
        if readback != pattern:
            raise KernelError(errno.EIO, f"SCRATCH reads {readback:#010x} after "
                                                f"writing {pattern:#010x}")
    version = await ident.read_fields("VERSION")
    config = await ident.read_fields("CONFIG")
    memory = await ident.read_fields("MEMORY")
    return SocIdentity(version=(version["major"], version["minor"], version["patch"]),
                       data_width=config["data_width"], addr_width=config["addr_width"],
                       sid_width=config["sid_width"], banks=memory["banks"],
                       mmio_addr_width=memory["mmio_addr_width"])
