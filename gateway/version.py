"""The gateway's version, as installed (a source tree never installed says so)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version

try:
    VERSION = package_version("inspection-gateway")
except PackageNotFoundError:  # run from a source tree that was never installed
    VERSION = "0.0.0+source"
