"""The luaq version, sent in the User-Agent."""

from importlib import metadata

try:
    __version__ = metadata.version("luaq")
except metadata.PackageNotFoundError:
    __version__ = "0.1.0"
