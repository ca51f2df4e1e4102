"""What the emulator knows about models: which exist, their dated ids, their kind."""

from __future__ import annotations

import re

# The id a response reports for a model family (the real service answers with dated ids).
DATED = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-5": "gpt-5-2025-08-07",
    "gpt-5-mini": "gpt-5-mini-2025-08-07",
    "gpt-5-nano": "gpt-5-nano-2025-08-07",
    "gpt-4-turbo": "gpt-4-turbo-2024-04-09",
    "gpt-3.5-turbo": "gpt-3.5-turbo-0125",
    "o1": "o1-2024-12-17",
    "o3": "o3-2025-04-16",
    "o3-mini": "o3-mini-2025-01-31",
    "o4-mini": "o4-mini-2025-04-16",
}
EMBEDDING_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
EMBEDDING_CONTEXT = 8192
_GENERATIVE = re.compile(
    r"^(gpt-(3\.5-turbo|4|4-turbo|4o|4o-mini|4\.1(-mini|-nano)?|4\.5-preview"
    r"|5(\.\d+)?(-mini|-nano|-pro|-chat-latest)?)|o1(-mini|-pro)?|o3(-mini|-pro)?|o4-mini"
    r"|chatgpt-4o-latest)(-\d{4}-\d{2}-\d{2}|-\d{4})?$")


def is_known(model: str, endpoint: str) -> bool:
    """Whether the Batch API would accept `model` on `endpoint` (typos are not)."""
    if endpoint == "/v1/embeddings":
        return model in EMBEDDING_DIMENSIONS
    return bool(_GENERATIVE.match(model)) or model.startswith("ft:")


def dated(model: str) -> str:
    """The model id a response carries: dated for known families, else unchanged."""
    return DATED.get(model, model)


def is_reasoning(model: str) -> bool:
    """Reasoning models bill hidden reasoning tokens inside `completion_tokens`."""
    name = model.removeprefix("ft:")
    return (name.startswith(("o1", "o3", "o4")) or
            (name.startswith("gpt-5") and "chat" not in name))
