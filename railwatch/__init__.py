"""railwatch: watch rail yards in satellite imagery and count what stands on the tracks."""

__version__ = "0.1.0"
