"""Maps the ``hw/`` and ``sw/`` folders under the one import package ``dmabuf_soc``.

Everything else about the distribution lives in ``pyproject.toml``.
"""
from setuptools import find_packages, setup

FOLDERS = ("hw", "sw", "sim")

setup(
    package_dir={f"dmabuf_soc.{folder}": folder for folder in FOLDERS},
    packages=[
        f"dmabuf_soc.{folder}{'.' + sub if sub else ''}"
        for folder in FOLDERS
        for sub in ["", *find_packages(folder)]
    ],
    # SystemRDL sources of the register blocks; C++ of the compiled backend's driver.
    package_data={f"dmabuf_soc.{folder}": ["**/*.rdl", "**/*.cc"] for folder in FOLDERS},
)
