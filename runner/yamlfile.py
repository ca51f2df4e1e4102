"""Reading YAML the way a careful user needs it read: with line numbers for every key.

`load(path)` returns the data and a `Positions` map from key paths (`("source", "filter",
"must", 0, "key")`) to line numbers, so any later check can say *where* in the file the
problem is. Duplicate keys are errors (YAML would silently keep the last one), as are
non-UTF-8 bytes. `${VAR}` and `${VAR:-default}` in string values are replaced from the
environment; `$${` writes a literal `${`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import Location, SpecError

KeyPath = tuple[Any, ...]

_INTERPOLATION = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


@dataclass
class Positions:
    """Line numbers of the keys and items of one YAML file."""

    file: str
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line(self, path: KeyPath) -> int:
        """The line of `path`, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 0)

    def at(self, path: KeyPath) -> Location:
        return Location(self.file, self.line(path), dotted(path))


def dotted(path: KeyPath) -> str:
    """("source", "filter", "must", 0, "key") -> "source.filter.must[0].key"."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def read_text(path: Path, display: str | None = None) -> str:
    """A text file as UTF-8, or an error naming the file and line of the first bad byte."""
    display = display or str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SpecError("file not found", where=Location(display)) from None
    except IsADirectoryError:
        raise SpecError("is a directory, expected a file", where=Location(display)) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SpecError(f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
                        where=Location(display, line),
                        hint="save the file as UTF-8") from None


def load(path: Path, display: str | None = None,
         environ: Mapping[str, str] | None = None) -> tuple[Any, Positions]:
    """Parse a YAML file into plain data plus the line of every key."""
    display = display or str(path)
    text = read_text(path, display)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise SpecError(f"invalid YAML: {problem}", where=Location(display, line),
                        hint="check the indentation and quoting on that line") from None
    positions = Positions(display)
    if node is None:
        return None, positions
    env = os.environ if environ is None else environ
    return _build(node, (), positions, env), positions


def _build(node: yaml.Node, path: KeyPath, positions: Positions, env: Mapping[str, str]) -> Any:
    positions.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise SpecError("YAML merge keys (<<) are not supported",
                                where=Location(positions.file, key_node.start_mark.line + 1,
                                               dotted(path)))
            key = _scalar(key_node)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise SpecError("mapping keys must be plain strings",
                                where=Location(positions.file, key_node.start_mark.line + 1,
                                               dotted(path)))
            key_path = (*path, key)
            if key in out:
                raise SpecError(f"duplicate key {key!r} (first on line {positions.lines[key_path]})",
                                where=Location(positions.file, key_node.start_mark.line + 1,
                                               dotted(key_path)),
                                hint="YAML keeps only the last one; remove or merge the other")
            positions.lines[key_path] = key_node.start_mark.line + 1
            out[key] = _build(value_node, key_path, positions, env)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), positions, env) for i, item in enumerate(node.value)]
    value = _scalar(node)
    if isinstance(value, str) and "$" in value:
        value = interpolate(value, env, positions.at(path))
    return value


_CONSTRUCTOR = yaml.SafeLoader("")
_PLAIN_TAGS = {"tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
               "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null"}


def _scalar(node: yaml.Node) -> Any:
    """A scalar as YAML types it, except dates, which stay strings (they end up in JSON)."""
    if not isinstance(node, yaml.ScalarNode):
        return node  # a mapping or list used as a key; the caller rejects it
    if node.tag not in _PLAIN_TAGS:
        return node.value
    return _CONSTRUCTOR.yaml_constructors[node.tag](_CONSTRUCTOR, node)


def interpolate(value: str, env: Mapping[str, str], where: Location) -> str:
    """Replace ${VAR} and ${VAR:-default}; a missing variable without default is an error."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name, default = match.group(1), match.group(2)
        if name in env and env[name] != "":
            return env[name]
        if default is not None:
            return default
        raise SpecError(f"environment variable {name} is not set",
                        where=where, hint=f"export {name}=… or write ${{{name}:-default}}")

    return _INTERPOLATION.sub(replace, value)
