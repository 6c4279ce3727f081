"""The identification register block: who the SoC is and how it was built."""

from .ident import IDENT_RDL, Ident, ident_spec, package_version

__all__ = ["IDENT_RDL", "Ident", "ident_spec", "package_version"]
