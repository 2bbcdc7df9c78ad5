"""persona-testbed: build and run the PERSONA testbed for pluralistic alignment."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("persona-testbed")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = ["__version__"]
