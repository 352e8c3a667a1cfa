"""The stretch library: a catalogue of common stretches that routines use by id (``- use: runners``).

The catalogue ships as package data (``catalogue/*.yaml``, one file per body
area), validated into strict frozen entries like routine files are. A routine
entry ``use: ID`` takes the entry's words (name, instructions, sides and what
they mean, coaching cues, caution); its timing comes from the routine (its
defaults, or the entry's own ``hold:`` and other overrides), so a routine reads
the same whichever stretches it borrows.
"""

from __future__ import annotations

import difflib
import functools
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from voiceguide.errors import RoutineError
from voiceguide.routine.model import Label, Name, PositiveSeconds, SpokenText, StretchId, Text

CATALOGUE_DIR = Path(__file__).with_name("catalogue")

Area = Literal["hips", "hip-flexors", "hamstrings", "quads", "calves", "glutes", "lower-back", "upper-back",
               "chest", "shoulders", "neck", "posterior-chain", "full-body"]
AREAS: tuple[str, ...] = Area.__args__  # type: ignore[attr-defined]
Level = Literal["beginner", "intermediate", "advanced"]
LEVELS: tuple[str, ...] = Level.__args__  # type: ignore[attr-defined]
Kind = Literal["stretch", "strength"]


class Entry(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """One stretch in the library."""

    id: StretchId
    name: Name
    areas: Annotated[list[Area], Meta(min_length=1)]
    level: Level
    kind: Kind = "stretch"
    hold: PositiveSeconds = 30.0  # the suggested hold, used when `voiceguide new` composes a session
    sides: Annotated[list[Label], Meta(min_length=1, max_length=8)] | None = None
    side_label: Text | None = None  # how a side is announced, e.g. "{side} leg back"
    instructions: SpokenText
    cues: Annotated[list[SpokenText], Meta(max_length=20)] = msgspec.field(default_factory=list)
    caution: Text | None = None

    def __post_init__(self) -> None:
        if self.sides and not self.side_label:
            raise ValueError(f"{self.id}: a stretch with sides needs a side_label")
        if self.side_label and "{side}" not in self.side_label:
            raise ValueError(f"{self.id}: side_label must contain {{side}}")


class _CatalogueFile(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    stretches: list[Entry]


@functools.lru_cache(maxsize=1)
def catalogue() -> dict[str, Entry]:
    """Every library entry by id, in file and entry order."""
    from voiceguide.routine.yamlsafe import compose, to_python

    entries: dict[str, Entry] = {}
    for path in sorted(CATALOGUE_DIR.glob("*.yaml")):
        source = f"catalogue/{path.name}"
        node = compose(path.read_text(encoding="utf-8"), source)
        data = to_python(node, source)[0] if node is not None else None
        try:
            for entry in msgspec.convert(data, _CatalogueFile, strict=True).stretches:
                if entry.id in entries:
                    raise RoutineError(f"{source}: stretch id {entry.id!r} is used twice in the library")
                entries[entry.id] = entry
        except (msgspec.ValidationError, ValueError) as exc:
            raise RoutineError(f"{source}: the stretch library is damaged ({exc}); reinstall voiceguide") from None
    return entries


def catalogue_stamp() -> bytes:
    """The library's bytes, so remembered routines that use it are re-read when it changes."""
    return b"".join(path.read_bytes() for path in sorted(CATALOGUE_DIR.glob("*.yaml")))


def find(stretch_id: str) -> Entry:
    """The library entry ``stretch_id``; RoutineError with the close matches if there is none."""
    entries = catalogue()
    if stretch_id in entries:
        return entries[stretch_id]
    close = difflib.get_close_matches(stretch_id, list(entries), n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else " (see `voiceguide stretches`)"
    raise RoutineError(f"no stretch {stretch_id!r} in the library{hint}")


def check_area(area: str) -> None:
    """RoutineError naming the close matches unless ``area`` is one of AREAS."""
    if area not in AREAS:
        close = difflib.get_close_matches(area, AREAS, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise RoutineError(f"--area: unknown area {area!r} ({hint}areas: {', '.join(AREAS)})")


def entries(area: str | None = None, level: str | None = None) -> list[Entry]:
    """Library entries, optionally only those for ``area`` and at most ``level``."""
    if area is not None:
        check_area(area)
    if level is not None and level not in LEVELS:
        raise RoutineError(f"--level: unknown level {level!r} (levels: {', '.join(LEVELS)})")
    top = LEVELS.index(level) if level else len(LEVELS)
    return [e for e in catalogue().values()
            if (area is None or area in e.areas) and LEVELS.index(e.level) <= top]


# What a routine entry takes from the library; timing stays the routine's.
_BORROWED = ("name", "instructions", "sides", "side_label", "caution")


def expand_uses(data: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[int, str]]]:
    """Replace every ``use: ID`` stretch with the library entry's words plus the routine entry's overrides.

    Returns the expanded data and the (index, message) of entries naming an
    unknown id, so the caller can report them with their line.
    """
    stretches = data.get("stretches")
    if not isinstance(stretches, list):
        return data, []
    out: list[Any] = []
    problems: list[tuple[int, str]] = []
    for index, item in enumerate(stretches):
        if not isinstance(item, dict) or "use" not in item:
            out.append(item)
            continue
        wanted = item["use"]
        if not isinstance(wanted, str):
            problems.append((index, f"stretches[{index}].use: must be a stretch id from the library (got {wanted!r})"))
            out.append(item)
            continue
        try:
            entry = find(wanted)
        except RoutineError as exc:
            problems.append((index, f"stretches[{index}].use: {exc}"))
            out.append(item)
            continue
        merged: dict[str, Any] = {"id": entry.id}
        merged |= {key: getattr(entry, key) for key in _BORROWED if getattr(entry, key) is not None}
        if entry.cues:
            merged["coaching"] = list(entry.cues)
        merged |= {key: value for key, value in item.items() if key != "use"}
        out.append(merged)
    return {**data, "stretches": out}, problems
