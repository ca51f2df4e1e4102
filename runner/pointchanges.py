"""Which points a pass found new or changed, and which of their fields changed — so a plan
names them ("title changed on 2 points: 20, 103") instead of only counting them.

A pass keeps the first few ids of each kind in memory. Asked for every id (`plan
--points`), it keeps them in a temporary on-disk table instead, so a cold plan over a
large collection stays flat in memory.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .decide import changed_fields

SAMPLE = 5          # ids kept of each kind without --points
NEW, CHANGED = "new", "changed"


@dataclass
class IdSample:
    """How many points, and the first few of their ids."""

    count: int = 0
    sample: list[Any] = field(default_factory=list)

    def add(self, point_id: Any) -> None:
        self.count += 1
        if len(self.sample) < SAMPLE:
            self.sample.append(point_id)


class PointChanges:
    """The new and the changed points of one pass, and the fields changed on them."""

    def __init__(self, *, every: bool = False):
        self.new = IdSample()
        self.changed = IdSample()
        self.fields: dict[str, IdSample] = {}   # field → the changed points it changed on
        self.unnamed = 0     # changed points whose stamp cannot say which field changed
        self._db: sqlite3.Connection | None = None
        if every:
            self._db = sqlite3.connect("")
            self._db.execute("CREATE TABLE ids (kind TEXT, field TEXT, id TEXT)")

    @property
    def complete(self) -> bool:
        """Every id is kept (`ids` lists them all), not only the first few."""
        return self._db is not None

    def add_new(self, point_id: Any) -> None:
        self.new.add(point_id)
        self._keep(NEW, "", point_id)

    def add_changed(self, point_id: Any, fields: list[str] | None) -> None:
        """A point changed since its stamp; `fields` that changed on it, None when its
        stamp predates field digests, [] when none did (the spec changed, not the data)."""
        self.changed.add(point_id)
        self._keep(CHANGED, "", point_id)
        if not fields:
            self.unnamed += 1
        for name in fields or ():
            self.fields.setdefault(name, IdSample()).add(point_id)
            self._keep(CHANGED, name, point_id)

    def _keep(self, kind: str, name: str, point_id: Any) -> None:
        if self._db is not None:
            self._db.execute("INSERT INTO ids VALUES (?, ?, ?)",
                             (kind, name, json.dumps(point_id)))

    def ids(self, kind: str, name: str = "") -> Iterator[Any]:
        """The ids of `kind` (new, changed), of one changed field when `name` is given:
        all of them when complete, else the first few."""
        if self._db is None:
            group = self.new if kind == NEW else self.fields.get(name) if name else self.changed
            yield from (group.sample if group else [])
            return
        cursor = self._db.execute("SELECT id FROM ids WHERE kind=? AND field=? ORDER BY rowid",
                                  (kind, name))
        while rows := cursor.fetchmany(1000):
            for (text,) in rows:
                yield json.loads(text)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class ChangedPoints:
    """Changed points wait here until the field digests their stamps recorded are read,
    `BATCH` points a call: a pass reads only the parts of a stamp it decides by
    (writeback.STAMP_READ), and of the digests, which only a changed point needs, it
    reads those of the changed points alone."""

    BATCH = 1000

    def __init__(self, changes: PointChanges,
                 stamps: Callable[[list[Any]], dict[Any, dict | None]]):
        self.changes = changes
        self.stamps = stamps      # ids → {id: the part of its stamp holding `fields`}
        self._waiting: list[tuple[Any, dict[str, str]]] = []

    def add(self, point_id: Any, fields: dict[str, str]) -> None:
        self._waiting.append((point_id, fields))
        if len(self._waiting) >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        waiting, self._waiting = self._waiting, []
        if not waiting:
            return
        old = self.stamps([point_id for point_id, _ in waiting])
        for point_id, fields in waiting:
            self.changes.add_changed(point_id, changed_fields(old.get(point_id), fields))
