"""Packages of named plug-in modules: the benchmarks and the simulation scenarios."""

import importlib
import pkgutil

__all__ = ["PluginPackage"]


class PluginPackage:
    """The public modules of one package, looked up by name.

    Each module's docstring's first line is its description.
    """
    def __init__(self, package_name, package_path, *, kind):
        self._name = package_name
        self._path = package_path
        self._kind = kind

    def available(self):
        """Names of the modules, sorted."""
        return sorted(info.name for info in pkgutil.iter_modules(self._path)
                      if not info.name.startswith("_"))

    def load(self, name):
        """The module called ``name``; raises ``KeyError`` naming the known ones."""
        if name not in self.available():
            raise KeyError(f"Unknown {self._kind} {name!r}; known: "
                           f"{', '.join(self.available())}")
        return importlib.import_module(f"{self._name}.{name}")

    def describe(self, name):
        """First line of the module's docstring."""
        doc = self.load(name).__doc__ or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""
