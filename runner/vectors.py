"""Embeddings as Qdrant vectors: what a model returns, and whether a collection can take it.

An `/v1/embeddings` job with `output.vector: NAME` writes each embedding into the point's
named vector NAME ("" is the collection's unnamed default vector), where Qdrant can search
it. Before anything is sent, `check_vector` compares the collection's vector config with
what the model returns — the vector exists, its size is the model's dimension (or
`params.dimensions`) — so a mismatch costs nothing. Qdrant can add a named vector to an
existing collection (qdrant-client `create_vector_name`, Qdrant ≥ 1.19 and the embedded
engine); batchrun does so only when asked (`apply --create-vectors`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import SpecError

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from .jobs import Job
    from .spec import JobSpec
    from .yamlfile import Positions


@dataclass(frozen=True)
class EmbeddingModel:
    dimensions: int          # the length of the vectors it returns by default
    max_input_tokens: int    # the longest input it accepts
    shortens: bool           # accepts `dimensions` to return shorter vectors


# OpenAI's embedding models (platform.openai.com/docs/guides/embeddings: 8,192 input tokens
# each; text-embedding-3-* accept `dimensions`, ada-002 does not).
EMBEDDING_MODELS = {
    "text-embedding-3-small": EmbeddingModel(1536, 8192, True),
    "text-embedding-3-large": EmbeddingModel(3072, 8192, True),
    "text-embedding-ada-002": EmbeddingModel(1536, 8192, False),
}
DISTANCE = "Cosine"   # OpenAI embeddings are unit length: cosine and dot rank alike


def embedding_model(model: str) -> EmbeddingModel | None:
    return EMBEDDING_MODELS.get(model.lower())


def dimensions(job: Job) -> int | None:
    """The length of the vectors the job's requests return, when it can be known."""
    asked = job.spec.params.get("dimensions")
    if isinstance(asked, int) and not isinstance(asked, bool):
        return asked
    known = embedding_model(job.spec.model)
    return known.dimensions if known else None


def input_limit_of(spec: JobSpec) -> int | None:
    """The most input tokens one request may carry, when known (declared, or the model's)."""
    if spec.input.max_tokens is not None:
        return spec.input.max_tokens
    known = embedding_model(spec.model)
    return known.max_input_tokens if known else None


def check_dimensions(spec: JobSpec, positions: Positions) -> None:
    """`params.dimensions` the model can honour: at most its own length, and only for a
    model that shortens (the API would refuse every request of the batch)."""
    asked = spec.params.get("dimensions")
    known = embedding_model(spec.model)
    if asked is None or known is None:
        return
    where = positions.at(("params", "dimensions"))
    if not known.shortens:
        raise SpecError(f"{spec.model} does not take params.dimensions: its vectors have "
                        f"{known.dimensions:,}", where=where, hint="remove params.dimensions")
    if not isinstance(asked, int) or isinstance(asked, bool) or not 1 <= asked <= known.dimensions:
        raise SpecError(f"expected params.dimensions between 1 and {known.dimensions:,} for "
                        f"{spec.model}, got {asked!r}", where=where,
                        hint=f"{spec.model} returns at most {known.dimensions:,} dimensions")


def shown(name: str) -> str:
    return "the unnamed default vector" if name == "" else f"vector {name!r}"


def check_vector(client: QdrantClient, job: Job, *, create: bool = False) -> str | None:
    """Raise a SpecError, pointing at output.vector, when the collection cannot take the
    job's vectors; with `create`, add a missing named vector first. Returns what was done
    ("created vector 'embedding' (1536, Cosine)") or None."""
    from qdrant_client import models

    name = job.spec.output.vector
    if name is None:
        return None
    where = job.at("output", "vector")
    collection = job.spec.source.collection
    size = dimensions(job)
    config = client.get_collection(collection).config.params.vectors
    named = config if isinstance(config, dict) else ({} if config is None else {"": config})
    params = named.get(name)
    if params is None:
        if create and name != "" and size is not None:
            client.create_vector_name(collection, name, models.DenseVectorNameConfig(
                dense=models.DenseVectorConfig(size=size, distance=models.Distance.COSINE)))
            return f"created {shown(name)} ({size:,} dimensions, {DISTANCE}) in {collection!r}"
        have = ", ".join(repr(n) if n else "the unnamed default" for n in named) or "none"
        how = (f"run `batchrun apply --create-vectors` to add it ({size:,} dimensions, "
               f"{DISTANCE}), or create it yourself" if name != "" and size is not None else
               "create the collection with it (Qdrant cannot add an unnamed vector later)"
               if name == "" else "set params.dimensions so batchrun knows its size, then "
               "`batchrun apply --create-vectors` adds it")
        raise SpecError(f"collection {collection!r} has no {shown(name)} (its vectors: {have})",
                        where=where, hint=how)
    if size is None:
        raise SpecError(f"batchrun does not know the dimension {job.spec.model} returns, so "
                        f"it cannot check {shown(name)} ({params.size:,}) before paying",
                        where=job.at("model"),
                        hint=f"set params.dimensions: {params.size} if the model takes it")
    if params.size != size:
        asked = "params.dimensions" if "dimensions" in job.spec.params else job.spec.model
        raise SpecError(f"{shown(name)} of {collection!r} holds {params.size:,} dimensions, but "
                        f"{asked} returns {size:,}", where=where,
                        hint="write into a vector of that size, or set params.dimensions "
                             f"to {params.size} (text-embedding-3-* models take it)")
    return None
