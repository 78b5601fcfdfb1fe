"""PrintLab: the 3D-print service of a university makerspace."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("printlab")
except PackageNotFoundError:  # running from a source tree that isn't installed
    __version__ = "0.0.0"
