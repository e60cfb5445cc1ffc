"""The package's version, in one place: a leaf that imports nothing (``format`` records it in
every object's metadata, the build reads it from here)."""

__version__ = "7.0.0.dev0"
