"""matmodal: reproducible multimodal material property prediction."""

__version__ = "0.1.0"
