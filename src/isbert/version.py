"""The package version, one declaration (pyproject.toml states the same number for the build)."""

__version__ = "0.1.0"
