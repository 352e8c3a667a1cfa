"""Safe YAML with line numbers: only plain scalars, lists and mappings; aliases bounded.

Kept apart from the routine models so PyYAML is imported only when a routine
file must actually be parsed (a routine seen before comes from the cache).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from voiceguide.errors import RoutineError
from voiceguide.routine.model import MAX_YAML_NODES, Path_, _dotted


class _SafeLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The safe loader (libyaml's when PyYAML has it: ten times faster); never constructs objects from tags."""


_NOT_YAML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")


def compose(text: str, source: str) -> yaml.Node | None:
    bad = _NOT_YAML.search(text)  # what YAML readers refuse, caught here to name its line
    if bad:
        line = text[: bad.start()].count("\n") + 1
        raise RoutineError(f"{source}:{line}: YAML syntax error: control character {ord(bad.group()):#04x} is not allowed")
    loader = _SafeLoader(text)  # cannot fail on characters now: _NOT_YAML is exactly what its reader refuses
    try:
        return loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = exc.problem or "invalid YAML"
        raise RoutineError(f"{source}:{line}: YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise RoutineError(f"{source}: YAML error: {exc}") from None
    finally:
        loader.dispose()


def to_python(node: yaml.Node, source: str) -> tuple[Any, dict[Path_, int]]:
    """Convert a composed YAML tree to plain data, recording the line of every path."""
    lines: dict[Path_, int] = {}
    budget = [MAX_YAML_NODES]
    constructor = _SafeLoader("")

    def convert(n: yaml.Node, path: Path_) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise RoutineError(f"{source}:{n.start_mark.line + 1}: too many YAML nodes (aliases expand too far)")
        lines.setdefault(path, n.start_mark.line + 1)
        if n.tag not in _PLAIN_TAGS:
            raise RoutineError(f"{source}:{n.start_mark.line + 1}: {_dotted(path)}: YAML tag {n.tag!r} is not allowed")
        if isinstance(n, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in n.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    raise RoutineError(f"{source}:{key_node.start_mark.line + 1}: keys must be plain names")
                key = str(key_node.value)
                if key in out:
                    raise RoutineError(f"{source}:{key_node.start_mark.line + 1}: {_dotted(path + (key,))}: duplicate key")
                lines[path + (key,)] = key_node.start_mark.line + 1
                out[key] = convert(value_node, path + (key,))
            return out
        if isinstance(n, yaml.SequenceNode):
            return [convert(item, path + (i,)) for i, item in enumerate(n.value)]
        try:
            return constructor.construct_object(n, deep=True)
        except (yaml.YAMLError, ValueError) as exc:
            raise RoutineError(f"{source}:{n.start_mark.line + 1}: {_dotted(path)}: bad value ({exc})") from None

    try:
        return convert(node, ()), lines
    finally:
        constructor.dispose()


_PLAIN_TAGS = {
    "tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null", "map", "seq")
}
