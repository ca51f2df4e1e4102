"""Reading YAML the way a careful user needs it read: with line numbers for every key.

`load(path)` returns the data and a `Positions` map from key paths (`("source", "filter",
"must", 0, "key")`) to line numbers, so any later check can say *where* in the file the
problem is. Duplicate keys are errors (YAML would silently keep the last one), as are
non-UTF-8 bytes; a syntax error names the key being read when it broke. `${VAR}` and
`${VAR:-default}` in string values are replaced from the environment; `$${` writes a
literal `${`. Where a value goes into requests (the caller says which: `sent`), a variable
named like a secret (*KEY*, *TOKEN*, *SECRET*, *PASSWORD*) is refused: it would be sent to
the model and stored with the answers. `load_json` reads JSON files (output schemas) with
the same positions.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import Location, SpecError

KeyPath = tuple[Any, ...]

_INTERPOLATION = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD", re.IGNORECASE)
Sent = Callable[[KeyPath], bool]   # does the value at this key path go into requests?


@dataclass
class Positions:
    """Line numbers of the keys and items of one YAML file."""

    file: str
    lines: dict[KeyPath, int] = field(default_factory=dict)
    text_lines: dict[KeyPath, int] = field(default_factory=dict)  # where a string's text starts

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

    def text_at(self, path: KeyPath) -> Location:
        """Where the text of the string at `path` starts: the line after `key: |`."""
        return Location(self.file, self.text_lines.get(tuple(path)) or self.line(path),
                        dotted(path))


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
    except OSError as exc:
        raise SpecError(f"cannot read the file: {exc.strerror}", where=Location(display)) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - raw.rfind(b"\n", 0, exc.start)
        raise SpecError(f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at column {column}",
                        where=Location(display, line),
                        hint="save the file as UTF-8") from None


def load(path: Path, display: str | None = None,
         environ: Mapping[str, str] | None = None, *,
         sent: Sent | None = None) -> tuple[Any, Positions]:
    """Parse a YAML file into plain data plus the line of every key. `sent`: which key
    paths go into requests, where no secret may be interpolated."""
    display = display or str(path)
    text = read_text(path, display)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, text, display) from None
    positions = Positions(display)
    if node is None:
        return None, positions
    env = os.environ if environ is None else environ
    return _build(node, (), positions, env, sent=sent), positions


def load_json(path: Path, display: str | None = None) -> tuple[Any, Positions]:
    """Parse a JSON file (exactly as JSON, not as YAML) plus the line of every key."""
    display = display or str(path)
    text = read_text(path, display)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"invalid JSON: {exc.msg} (column {exc.colno})",
                        where=Location(display, exc.lineno, _path_at(text, exc.pos)),
                        hint="JSON allows no trailing commas, comments or single quotes"
                        ) from None
    positions = Positions(display)
    try:  # JSON is YAML's flow style: its nodes carry the lines (tabs are only whitespace)
        node = yaml.compose(text.replace("\t", " "), Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        node = None  # lines unknown; the data is still right
    if node is not None:
        _build(node, (), positions, {}, expand=False)
    return data, positions


def _syntax_error(exc: yaml.MarkedYAMLError, text: str, display: str) -> SpecError:
    """A YAML syntax error at the line it was found, naming the key being read, in words
    for the common slips (tabs, indentation)."""
    mark = exc.problem_mark or exc.context_mark
    where = Location(display, mark.line + 1 if mark else 0,
                     _path_at(text, mark.index if mark else 0))
    problem = str(exc.problem or exc.context)
    hint = "check the indentation, brackets and quoting on that line"
    context = (f" ({exc.context} started on line {exc.context_mark.line + 1})"
               if exc.context and exc.problem and exc.context_mark else "")
    if "'\\t'" in problem:
        problem, context = "a tab character; YAML indents with spaces only", ""
        hint = "replace the tabs on that line with spaces"
    elif problem.startswith("expected <block end>"):
        problem = "the indentation does not match the lines above"
        hint = "indent the keys of one mapping by the same number of spaces"
    return SpecError(f"invalid YAML: {problem}{context}", where=where, hint=hint)


def _path_at(text: str, offset: int) -> str:
    """The key path the parser is inside at `offset`: where a syntax error is, in the
    file's own terms (indices into a [flow, list] are left out: the list's key says more)."""
    frames: list[list[Any]] = []  # mappings: [key, value done?]; lists: [index, flow style?]
    mappings: list[bool] = []

    def value_starts() -> None:
        if frames and not mappings[-1]:
            frames[-1][0] += 1

    def value_ends() -> None:
        if frames and mappings[-1]:
            frames[-1][1] = True

    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if event.start_mark is None or event.start_mark.index >= offset:
                break
            if isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent)):
                if frames and mappings[-1] and frames[-1][1]:
                    frames[-1] = [getattr(event, "value", None), False]
                else:
                    value_starts()
                    value_ends()
            elif isinstance(event, yaml.CollectionStartEvent):
                value_starts()
                is_mapping = isinstance(event, yaml.MappingStartEvent)
                frames.append([None, True] if is_mapping else [-1, bool(event.flow_style)])
                mappings.append(is_mapping)
            elif isinstance(event, yaml.CollectionEndEvent):
                frames.pop()
                mappings.pop()
                value_ends()
    except yaml.YAMLError:
        pass
    path = [part for (part, flag), is_mapping in zip(frames, mappings, strict=True)
            if not flag and part is not None and (is_mapping or part >= 0)]
    if not frames or (mappings[-1] and frames[-1][1]):  # between keys: the line's own key
        start = text.rfind("\n", 0, offset) + 1
        written = _LINE_KEY.match(text, start)
        path += [written.group(1)] if written else []
    return dotted(tuple(path))


_LINE_KEY = re.compile(r"[ \t]*([A-Za-z0-9_.-]+)[ \t]*:(?:\s|$)")


def _build(node: yaml.Node, path: KeyPath, positions: Positions, env: Mapping[str, str],
           expand: bool = True, sent: Sent | None = None) -> Any:
    positions.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise SpecError("YAML merge keys (<<) are not supported",
                                where=Location(positions.file, key_node.start_mark.line + 1,
                                               dotted(path)),
                                hint="write the keys out; an anchor (&name, *name) can still "
                                "repeat a whole value")
            key = _scalar(key_node)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise SpecError("mapping keys must be plain strings",
                                where=Location(positions.file, key_node.start_mark.line + 1,
                                               dotted(path)))
            key_path = (*path, key)
            if key in out:
                first = positions.lines[key_path]
                raise SpecError(f"duplicate key {key!r} (first on line {first})",
                                where=Location(positions.file, key_node.start_mark.line + 1,
                                               dotted(key_path)),
                                hint="only the last one would count; remove or merge the other")
            positions.lines[key_path] = key_node.start_mark.line + 1
            out[key] = _build(value_node, key_path, positions, env, expand, sent)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), positions, env, expand, sent)
                for i, item in enumerate(node.value)]
    block = getattr(node, "style", None) in ("|", ">")   # a scalar: plain, quoted or block
    positions.text_lines[path] = node.start_mark.line + 1 + block
    value = _scalar(node)
    if expand and isinstance(value, str) and "$" in value:
        value = interpolate(value, env, positions.at(path),
                            secrets_refused=sent is not None and sent(path))
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


def interpolate(value: str, env: Mapping[str, str], where: Location, *,
                secrets_refused: bool = False) -> str:
    """Replace ${VAR} and ${VAR:-default}; a missing variable without default is an error,
    and so is, with `secrets_refused`, a variable named like a secret."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name, default = match.group(1), match.group(2)
        secret = SECRET_NAME.search(name) if secrets_refused else None
        if secret is not None:
            raise SpecError(f"${{{name}}} would put a secret into every request: it would be "
                            "sent to the model and stored with the answers; environment "
                            "variables named *KEY*, *TOKEN*, *SECRET* or *PASSWORD* are never "
                            "interpolated into prompts, params or the output schema",
                            where=where, hint="write the text itself; a variable that only "
                            f"looks secret (its name holds {secret[0]!r}) must be renamed")
        if name in env and env[name] != "":
            return env[name]
        if default is not None:
            return default
        raise SpecError(f"environment variable {name} is not set",
                        where=where, hint=f"export {name}=… or write ${{{name}:-default}}")

    return _INTERPOLATION.sub(replace, value)
