"""The package version, its one declaration (pyproject.toml reads it for the build: ``dynamic = ["version"]``)."""

__version__ = "0.1.0"
