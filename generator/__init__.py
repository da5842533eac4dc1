"""Model Atlas: a static-site atlas of what a transformer does inside."""

__version__ = "0.1.0"
