"""batchrun: a make-like runner for LLM batch jobs over a Qdrant collection."""

__version__ = "0.1.0"
