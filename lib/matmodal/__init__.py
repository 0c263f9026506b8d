"""matmodal: reproducible multimodal material property prediction."""

__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "setup":  # lazy: `import matmodal` stays light (no pydantic until a notebook asks)
        from matmodal.notebook_setup import setup

        return setup
    raise AttributeError(f"module 'matmodal' has no attribute {name!r}")
