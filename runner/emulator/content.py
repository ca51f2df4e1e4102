"""Deterministic answers built from the words of a prompt.

The emulator does not understand prompts; it answers with their most distinctive words,
so a demo's tags look like the record they came from ("music", "berlin", "live") and the
same prompt always gets the same answer. `instance` builds a JSON value valid against a
JSON Schema (the Structured Outputs subset: objects, arrays, enums, consts, numbers,
formats, anyOf, $ref/$defs); for an enum it prefers the value the record itself mentions.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from dataclasses import dataclass
from typing import Any

_WORD = re.compile(r"[^\W\d_](?:[\w'-]*[^\W_])?")
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
# A few very common words per language, to guess a `language` field from the record.
_LANGUAGE_HINTS = {
    "en": frozenset("the and of to in is for with this that you on are".split()),
    "fr": frozenset("le la les des est et du une pour dans sur vous pas".split()),
    "es": frozenset("el los las del que por para una con es y en".split()),
    "de": frozenset("der die das und ist nicht mit auf für ein eine".split()),
}
STOPWORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before
being below between both but by can could did do does doing down during each few for from
further had has have having he her here hers herself him himself his how i if in into is it
its itself just let me more most my myself no nor not now of off on once only or other our
ours ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were
what when where which while who whom why will with would you your yours yourself yourselves
one two may might must shall within without via per etc yes
answer answers assistant field fields following format given json keys label list output
please provide reply respond response return returns schema task text user value values
write words based describe description title tags tag use using only each exactly
new old get got make made like many much well even still really thing things way
""".split())
_PROSE_FIELDS = ("summary", "description", "reason", "explanation", "analysis", "text",
                 "content", "comment", "rationale", "answer", "notes", "note")
_NAME_FIELDS = ("title", "name", "label", "category", "topic", "heading", "subject")


@dataclass(frozen=True)
class Prompt:
    """The text of a request: what the user (the record) said, and all of it."""

    user: str
    full: str

    def words(self) -> list[str]:
        """Distinctive words, most frequent first, from the user text (else all text)."""
        return distinctive_words(self.user) or distinctive_words(self.full) or ["emulated"]

    @functools.cached_property
    def user_words(self) -> dict[str, tuple[int, int]]:
        """Each lowercase \\w+ word of the user text: (occurrences, first offset)."""
        found: dict[str, tuple[int, int]] = {}
        for match in re.finditer(r"\w+", self.user.lower()):
            count, first = found.get(match.group(0), (0, match.start()))
            found[match.group(0)] = (count + 1, first)
        return found


def distinctive_words(text: str) -> list[str]:
    counts: dict[str, int] = {}
    first: dict[str, str] = {}
    for match in _WORD.finditer(_URL.sub(" ", text)):
        word = match.group(0)
        key = word.lower()
        if len(key) < 3 or key in STOPWORDS:
            continue
        counts[key] = counts.get(key, 0) + 1
        first.setdefault(key, word if not word.isupper() else key)
    order = sorted(counts, key=lambda k: -counts[k])  # stable: ties keep first appearance
    return [first[k].lower() for k in order]


def guess_language(text: str) -> str:
    """An ISO 639-1 code from the commonest small words of `text` ("en" when unsure)."""
    words = [w.lower() for w in _WORD.findall(_URL.sub(" ", text))]
    scores = {code: sum(w in hints for w in words) for code, hints in _LANGUAGE_HINTS.items()}
    best = max(scores, key=lambda code: scores[code])
    return best if scores[best] else "en"


def stable_int(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256("\0".join(map(str, parts)).encode()).digest()[:8],
                          "big")


def sentence(words: list[str], count: int) -> str:
    chosen = [words[i % len(words)] for i in range(min(count, max(len(words), 3)))]
    text = " ".join(chosen)
    return text[:1].upper() + text[1:] + "."


def pick_enum(options: list[Any], prompt: Prompt) -> Any:
    """The option the user text mentions most (as a word), else a fixed choice."""
    best, best_score = None, (0, 0)
    for option in options:
        if not isinstance(option, str) or not option:
            continue
        wanted = option.lower()
        if re.fullmatch(r"\w+", wanted):   # one word: counted once per prompt, not per option
            count, first = prompt.user_words.get(wanted, (0, 0))
        else:
            hits = [m.start() for m in re.finditer(rf"(?<!\w){re.escape(wanted)}(?!\w)",
                                                    prompt.user.lower())]
            count, first = len(hits), (hits[0] if hits else 0)
        if count and (count, -first) > best_score:
            best, best_score = option, (count, -first)
    if best is not None:
        return best
    return options[stable_int(prompt.user, *map(str, options)) % len(options)]


class _Builder:
    def __init__(self, root: dict[str, Any], prompt: Prompt):
        self.root = root
        self.prompt = prompt
        self.words = prompt.words()

    def build(self, schema: Any, name: str = "", depth: int = 0) -> Any:
        if not isinstance(schema, dict):
            return self.text(name, {})
        if "$ref" in schema:
            return self.build(self.resolve(schema["$ref"]), name, depth + 1)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return pick_enum(list(schema["enum"]), self.prompt)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [s for s in schema[key] if not (isinstance(s, dict)
                                                          and s.get("type") == "null")]
                return self.build((options or schema[key])[0], name, depth + 1)
        if "allOf" in schema:
            merged: dict[str, Any] = {}
            for part in schema["allOf"]:
                part = self.resolve(part["$ref"]) if "$ref" in part else part
                for key, value in part.items():
                    if key == "properties":
                        merged.setdefault("properties", {}).update(value)
                    else:
                        merged[key] = value
            return self.build(merged, name, depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            kind = "object" if "properties" in schema else "array" if "items" in schema \
                else "string"
        return getattr(self, f"make_{kind}", self.make_string)(schema, name, depth)

    def resolve(self, ref: str) -> Any:
        node: Any = self.root
        for part in ref.lstrip("#").strip("/").split("/"):
            if part:
                node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def make_object(self, schema: dict[str, Any], name: str, depth: int) -> Any:
        properties = schema.get("properties", {})
        if depth > 8:  # a recursive schema: stop at the required keys
            properties = {k: v for k, v in properties.items() if k in schema.get("required", ())}
        return {key: self.build(sub, key, depth + 1) for key, sub in properties.items()}

    def make_array(self, schema: dict[str, Any], name: str, depth: int) -> Any:
        low = schema.get("minItems", 0)
        high = schema.get("maxItems", max(low, 5))
        count = max(low, min(high, 3 if depth > 2 else 5, len(self.words)))
        if depth > 8:
            count = low
        items = schema.get("items", {})
        if isinstance(items, dict) and "$ref" in items:
            items = self.resolve(items["$ref"])
        if isinstance(items, dict) and items.get("type", "string") == "string" \
                and not {"enum", "const", "format"} & set(items):
            pool = self.words
            words = [self.fit(w, items) for w in pool][:count]
            while len(words) < count:
                words.append(self.fit(f"{pool[len(words) % len(pool)]}-{len(words)}", items))
            return words
        result = []
        for _ in range(count):
            self.words = self.words[1:] + self.words[:1]  # each item its own words
            result.append(self.build(items, name, depth + 1))
        if schema.get("uniqueItems"):
            result = [v for i, v in enumerate(result) if v not in result[:i]]
            while len(result) < low and isinstance(items, dict):
                result.append(self.build(items, f"{name}{len(result)}", depth + 1))
        return result

    def make_string(self, schema: dict[str, Any], name: str, depth: int) -> Any:
        fmt = schema.get("format")
        seed = stable_int(self.prompt.user, name)
        if fmt == "date":
            return f"20{20 + seed % 6}-{1 + seed % 12:02d}-{1 + seed % 28:02d}"
        if fmt == "date-time":
            return f"20{20 + seed % 6}-{1 + seed % 12:02d}-{1 + seed % 28:02d}T12:00:00Z"
        if fmt == "time":
            return f"{seed % 24:02d}:{seed % 60:02d}:00"
        if fmt == "email":
            return f"{self.words[0].lower()}@example.com"
        if fmt in ("uri", "url"):
            return f"https://example.com/{self.words[0].lower()}"
        if fmt == "hostname":
            return f"{re.sub(r'[^a-z0-9-]', '', self.words[0].lower()) or 'www'}.example.com"
        if fmt == "ipv4":  # 192.0.2.0/24: the range kept for documentation
            return f"192.0.2.{1 + seed % 254}"
        if fmt == "ipv6":
            return f"2001:db8::{seed % 0xffff:x}"
        if fmt == "duration":
            return f"PT{1 + seed % 59}M"
        if fmt == "uuid":
            digits = f"{seed:016x}{stable_int(seed):016x}"
            return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-8{digits[17:20]}-{digits[20:32]}"
        return self.text(name, schema)

    def text(self, name: str, schema: dict[str, Any]) -> str:
        lowered = name.lower()
        if "lang" in lowered:
            value = guess_language(self.prompt.user)
        elif any(f in lowered for f in _PROSE_FIELDS):
            value = sentence(self.words, 12)
        elif any(f in lowered for f in _NAME_FIELDS):
            value = " ".join(w.capitalize() for w in self.words[:3])
        else:
            value = " ".join(self.words[:2])
        return self.fit(value, schema)

    @staticmethod
    def fit(value: str, schema: dict[str, Any]) -> str:
        low, high = schema.get("minLength", 0), schema.get("maxLength")
        while len(value) < low:
            value += " " + value if value else "x"
        return value[:high] if high is not None else value

    def make_integer(self, schema: dict[str, Any], name: str, depth: int) -> Any:
        return int(self.number(schema, name, integer=True))

    def make_number(self, schema: dict[str, Any], name: str, depth: int) -> Any:
        return self.number(schema, name, integer=False)

    def number(self, schema: dict[str, Any], name: str, *, integer: bool) -> float:
        """A multiple of `multipleOf` (1 or 0.5 by default) inside the bounds."""
        step = schema.get("multipleOf") or (1 if integer else 0.5)
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        k_low = None if low is None else math.ceil(low / step)
        k_high = None if high is None else math.floor(high / step)
        if "exclusiveMinimum" in schema and k_low is not None and k_low * step <= low:
            k_low += 1
        if "exclusiveMaximum" in schema and k_high is not None and k_high * step >= high:
            k_high -= 1
        if k_low is None:
            k_low = 0 if k_high is None or k_high >= 10 else k_high - 10
        if k_high is None:
            k_high = k_low + 10
        k = k_low + stable_int(self.prompt.user, name) % max(1, k_high - k_low + 1)
        return k * step if not integer else int(k * step)

    def make_boolean(self, schema: dict[str, Any], name: str, depth: int) -> Any:
        return stable_int(self.prompt.user, name) % 2 == 0

    def make_null(self, schema: dict[str, Any], name: str, depth: int) -> Any:
        return None


def instance(schema: dict[str, Any], prompt: Prompt) -> Any:
    """A JSON value valid against `schema`, made of the prompt's words."""
    return _Builder(schema, prompt).build(schema)


# The shape of an answer when JSON is asked for without a schema (JSON mode).
FREE_JSON_SCHEMA = {"type": "object", "properties": {
    "summary": {"type": "string"}, "keywords": {"type": "array", "items": {"type": "string"}},
    "category": {"type": "string"}}}
