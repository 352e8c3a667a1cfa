"""Loading routines: safe YAML with line marks into the strict models; every error names file, line and field."""

from __future__ import annotations

import difflib
import hashlib
import math
import os
import re
import stat
from pathlib import Path
from typing import Any

import msgspec
import msgspec.structs

from voiceguide.errors import RoutineError
from voiceguide.routine.model import _NESTED, MAX_FILE_BYTES, Path_, Routine, _dotted, _num


def _nearest_line(lines: dict[Path_, int], path: Path_) -> int:
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path, 1)


def _fields_at(path: Path_) -> list[str]:
    """The field names allowed at a path, for 'did you mean' suggestions."""
    model: type[msgspec.Struct] | None = Routine
    for part in path:
        if isinstance(part, int) or model is None:
            continue
        model = _NESTED.get(model, {}).get(part)
    return list(model.__struct_fields__) if model else []


_LOCATION = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_PATH_PART = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]|\[\.\.\.\]")
_BOUND = re.compile(r"^Expected `(?P<kind>\w+)` (?P<op>>=|<=|>|<) (?P<limit>\S+)$")
_LENGTH = re.compile(r"^Expected `(?P<kind>\w+)` of length (?P<op>>=|<=) (?P<limit>\d+)$")
_TYPE = re.compile(r"^Expected `(?P<expected>[^`]+)`, got `(?P<got>\w+)`$")
_BOUND_WORDS = {">": "greater than", ">=": "at least", "<": "less than", "<=": "at most"}
_PATTERN_WORDS = {"\\\\S": "must not be blank"}  # msgspec's text of VoiceSettings' not-blank pattern
_TYPE_WORDS = {"float": "a number of seconds", "int": "a whole number", "str": "text", "bool": "true or false",
               "array": "a list", "object": "a mapping"}


def _split_error(text: str) -> tuple[str, Path_]:
    """msgspec's 'Expected ... - at `$.a[0].b`' -> (message, ('a', 0, 'b'))."""
    match = _LOCATION.match(text)
    assert match is not None  # the pattern matches any text
    path: list[str | int] = []
    for name, index in _PATH_PART.findall(match["path"] or ""):
        if name:
            path.append(name)
        elif index:
            path.append(int(index))
        # "[...]" is a mapping value: its key is unknown, so the mapping itself is reported
    message = match["message"]
    if message.startswith("@"):  # a cross-field check naming its field (_FieldProblem)
        field, _, message = message[1:].partition(": ")
        path += tuple(int(part) if part.isdigit() else part for part in field.split("."))
    return message, tuple(path)


def _at(data: Any, path: Path_) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _describe(message: str, path: Path_, data: Any) -> tuple[str, Path_]:
    """One of our messages for a msgspec error, and the path to report it at."""
    if found := re.match(r"Object contains unknown field `(.*)`$", message):
        key = found[1]
        hint = difflib.get_close_matches(key, _fields_at(path), n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        return f"{_dotted(path)}: unknown key {key!r}{suggestion}", path + (key,)
    if found := re.match(r"Object missing required field `(.*)`$", message):
        path += (found[1],)
        return f"{_dotted(path)}: required", path
    return _describe_value(message, _dotted(path), _at(data, path)), path


def _describe_value(message: str, field: str, got: Any) -> str:
    """Our message for a value msgspec refused (a bound, a length, a pattern or a type)."""
    if isinstance(got, float) and math.isnan(got):
        return f"{field}: must be a number (got nan)"
    if found := _BOUND.match(message):
        return f"{field}: must be {_BOUND_WORDS[found['op']]} {_num(float(found['limit']))} (got {got!r})"
    if found := _LENGTH.match(message):
        unit = "characters" if found["kind"] == "str" else "item(s)"
        if found["kind"] == "str" and found["op"] == ">=":
            return f"{field}: must not be empty"
        least = "at least" if found["op"] == ">=" else "at most"
        return f"{field}: must have {least} {found['limit']} {unit}"
    if found := re.match(r"Expected `str` matching regex '(.*)'$", message):  # the blank check or a stretch id
        return f"{field}: " + _PATTERN_WORDS.get(found[1], f"must be lowercase letters, digits, '-' and '_' (got {got!r})")
    if found := _TYPE.match(message):
        wanted = [kind for kind in found["expected"].split(" | ") if kind != "null"]
        words = " or ".join(_TYPE_WORDS.get(kind, kind) for kind in wanted)
        if wanted == ["float", "object"]:
            words = "a number of seconds, or a mapping of side to seconds"
        return f"{field}: must be {words} (got {got!r})"
    return f"{field}: {message[:1].lower()}{message[1:]}"


def parse_routine(text: str, source: str = "<routine>") -> Routine:
    """Validate routine YAML text; raise RoutineError naming source, line and field."""
    if "\x00" in text:
        raise RoutineError(f"{source}:1: not a text file (contains NUL bytes)")
    from voiceguide.routine.yamlsafe import compose, to_python

    node = compose(text, source)
    if node is None:
        raise RoutineError(f"{source}:1: the file is empty; a routine needs 'name' and 'stretches'")
    data, lines = to_python(node, source)
    if not isinstance(data, dict):
        raise RoutineError(f"{source}:1: a routine must be a mapping with 'name' and 'stretches'")
    if any(isinstance(item, dict) and "use" in item for item in data.get("stretches") or ()):
        from voiceguide.routine.library import expand_uses

        data, problems = expand_uses(data)
        if problems:
            index, message = problems[0]
            raise RoutineError(f"{source}:{_nearest_line(lines, ('stretches', index, 'use'))}: {message}")
    try:
        return msgspec.convert(data, Routine, strict=True)
    except msgspec.ValidationError as exc:
        message, path = _split_error(str(exc))
        described, where = _describe(message, path, data)
        raise RoutineError(f"{source}:{_nearest_line(lines, where)}: {described}") from None


# A parsed routine is remembered (as msgspec JSON, validated again on the way back in) under the hash
# of its text and of this module, so PyYAML is not even imported for a routine seen before.
# The stretch library counts too: a routine that uses it reads differently when it changes.
_MODEL_STAMP = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(Path(__file__).parent.glob("*.py")))
                             + b"".join(p.read_bytes() for p in sorted(Path(__file__).parent.glob("catalogue/*.yaml")))
                             + msgspec.__version__.encode()).digest()


def parse_routine_cached(text: str, source: str = "<routine>") -> Routine:
    """parse_routine, remembering valid routines in the cache (invalid ones are never stored)."""
    from voiceguide.host import default_cache_dir, recall, remember

    folder, key = default_cache_dir(), hashlib.sha256(_MODEL_STAMP + text.encode()).hexdigest()
    known = recall(folder, "routines", key)
    if known is not None:
        try:
            return msgspec.json.decode(known, type=Routine, strict=True)
        except (msgspec.ValidationError, msgspec.DecodeError):
            pass  # stale or damaged: parse again
    routine = parse_routine(text, source)
    remember(folder, "routines", key, msgspec.json.encode(routine))
    return routine


def load_routine_file(path: str | Path) -> Routine:
    """Read and validate a routine file (a regular file of at most MAX_FILE_BYTES; never a FIFO or a device)."""
    if not isinstance(path, (str, Path)):
        raise RoutineError(f"routine: must be a file path (got {type(path).__name__})")
    path = Path(path)
    raw = _read_bounded(path)
    if b"\x00" in raw[:4096]:
        raise RoutineError(f"{path}:1: not a text file (contains NUL bytes; routines are UTF-8 YAML)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise RoutineError(f"{path}:{line}: not UTF-8 text (byte {exc.start})") from None
    routine = parse_routine_cached(text, str(path))
    if routine.music:  # music is named relative to the routine file
        routine = msgspec.structs.replace(routine, music=[str(path.parent / name) for name in routine.music])
    return routine


def _read_bounded(path: Path) -> bytes:
    """The bytes of a routine file, checked before reading: a regular file, not too large.

    Opened without blocking (a FIFO would otherwise wait for a writer forever) and
    checked on the open descriptor, so nothing can be swapped in between.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise RoutineError(f"{path}: no such routine file") from None
    except IsADirectoryError:
        raise RoutineError(f"{path}: is a directory, not a routine file") from None
    except OSError as exc:
        raise RoutineError(f"{path}: cannot read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise RoutineError(f"{path}: is a directory, not a routine file")
        if not stat.S_ISREG(info.st_mode):
            raise RoutineError(f"{path}: not a regular file (a pipe or a device); routines are YAML files")
        if info.st_size > MAX_FILE_BYTES:
            raise RoutineError(f"{path}:1: file is larger than {MAX_FILE_BYTES // 1000} kB; not a routine")
        try:
            raw = file.read(MAX_FILE_BYTES + 1)  # bounded even if the file grows while we read
        except OSError as exc:
            raise RoutineError(f"{path}: cannot read ({exc.strerror})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise RoutineError(f"{path}:1: file is larger than {MAX_FILE_BYTES // 1000} kB; not a routine")
    return raw


# --- Schema and starter ------------------------------------------------------


def routine_schema() -> dict[str, Any]:
    """JSON Schema of a routine file."""
    generated = msgspec.json.schema(Routine)
    definitions = generated["$defs"]
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **definitions.pop("Routine")}
    schema["title"] = "voiceguide routine"
    schema["$defs"] = definitions
    return schema
