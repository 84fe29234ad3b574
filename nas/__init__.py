"""zcnas: zero-cost neural architecture search."""
__version__ = "0.1.0"
