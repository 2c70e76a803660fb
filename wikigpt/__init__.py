"""wikigpt: a reproducible pipeline from a raw Wikipedia dump to an evaluated chat model."""

__version__ = "0.1.0"
