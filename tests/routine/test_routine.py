"""Routine files: strict validation with file:line: field errors, safe YAML, built-ins."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voiceguide.errors import RoutineError
from voiceguide.routine.builtin import builtin_names, load_builtin, resolve_routine
from voiceguide.routine.load import load_routine_file, parse_routine

MINIMAL = "name: Test\nstretches:\n  - name: Lunge\n"


def error_of(text: str) -> str:
    with pytest.raises(RoutineError) as info:
        parse_routine(text, "my.yaml")
    return str(info.value)


def test_minimal_routine_gets_defaults() -> None:
    routine = parse_routine(MINIMAL)
    assert routine.name == "Test"
    assert routine.defaults.hold == 30 and routine.defaults.rest == 5
    assert routine.stretches[0].sides is None


def test_full_example_from_readme_parses() -> None:
    text = (Path(__file__).parents[2] / "README.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```yaml\n")[1:]]
    block = next(b for b in blocks if b.startswith("name:"))
    routine = parse_routine(block, "README example")
    assert routine.stretches[0].sides == ["left", "right"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: x\nstretches:\n  - name: a\n    hodl: 3\n", "my.yaml:4: stretches[0]: unknown key 'hodl'; did you mean 'hold'?"),
        ("name: x\nstretches:\n  - name: a\n    hold: abc\n",
         "my.yaml:4: stretches[0].hold: must be a number of seconds, or a mapping of side to seconds (got 'abc')"),
        ("name: x\nstretches:\n  - name: a\n    hold: -3\n", "my.yaml:4: stretches[0].hold: must be greater than 0 (got -3)"),
        ("name: x\nstretches: []\n", "my.yaml:2: stretches: must have at least 1 item(s)"),
        ("name: x\n", "my.yaml:1: stretches: required"),
        ("name: x\ndefaults:\n  hold: .nan\nstretches: [{name: a}]\n", "my.yaml:3: defaults.hold: must be a number"),
        ("name: x\nstretches:\n  - name: a\n    sides: [l, r]\n    hold: {l: 3, r: 0}\n",
         "my.yaml:5: stretches[0].hold.r: must be greater than 0 (got 0)"),
        ("name: x\nstretches:\n  - name: a\n  - name: A\n", "two stretches are called 'a'"),
        ("name: [\n", "my.yaml:2: YAML syntax error"),
        ("- a\n", "my.yaml:1: a routine must be a mapping"),
        ("", "my.yaml:1: the file is empty"),
        ("name: x\nname: y\nstretches: [{name: a}]\n", "my.yaml:2: name: duplicate key"),
        ("name: !!python/object/apply:os.system [ls]\nstretches: [{name: a}]\n", "my.yaml:1: name: YAML tag"),
    ],
)
def test_errors_name_file_line_and_field(text: str, expected: str) -> None:
    message = error_of(text)
    assert expected in message
    assert "\n" not in message


def test_alias_bomb_is_bounded() -> None:
    layers = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i, name in enumerate("bcdefg"):
        prev = "abcdefg"[i]
        layers.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    assert "too many YAML nodes" in error_of("\n".join(layers) + "\n")


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(RoutineError, match="no such routine file"):
        load_routine_file(tmp_path / "missing.yaml")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"name: x\n\xff\xfe\x00garbage")
    with pytest.raises(RoutineError, match=r"bin.yaml:\d+: not"):
        load_routine_file(binary)


def test_builtins_load_and_resolve() -> None:
    assert "psoas" in builtin_names()
    psoas = load_builtin("psoas")
    assert [s.id for s in psoas.stretches] == ["table", "runners", "pelvic-tilt", "glute-bridge-hold"]
    assert all(s.sides == ["left", "right"] for s in psoas.stretches[:3])
    routine, base = resolve_routine("psoas")
    assert (routine, base) == (psoas, "psoas")
    with pytest.raises(RoutineError, match=f"built-ins: {', '.join(builtin_names())}"):
        resolve_routine("no-such-routine")


def test_builtin_psoas_says_what_the_sources_teach() -> None:
    psoas = load_builtin("psoas")
    text = " ".join([psoas.intro or "", psoas.closing or ""] + [s.instructions or "" for s in psoas.stretches]
                    + [c.say for s in psoas.stretches for c in s.cues] + [c for s in psoas.stretches for c in s.coaching]
                    ).lower()
    for fact in ("kneel on one knee", "table", "tilt your pelvis", "hamstrings", "glutes", "block", "forty-five seconds"):
        assert fact in text
    assert "only" not in (psoas.closing or "").lower()  # the source's "the only other way" overclaims
    assert all((s.hold or psoas.defaults.hold) >= 30 for s in psoas.stretches)  # at least thirty seconds a side


# --- The malformed-routine corpus and the loader fuzz test -------------------------

CORPUS = Path(__file__).parent / "corpus"
EXPECTED = json.loads((CORPUS / "expectations.json").read_text(encoding="utf-8"))


def test_corpus_is_complete() -> None:
    files = sorted(p.name for p in (CORPUS / "bad").iterdir())
    assert files == sorted(EXPECTED) and len(files) >= 40


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_malformed_routine_is_one_clear_line(name: str) -> None:
    path = CORPUS / "bad" / name
    line, expected = EXPECTED[name]
    with pytest.raises(RoutineError) as caught:
        load_routine_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert expected in message
    assert "\n" not in message and "Traceback" not in message and len(message) < 300


VALID = "name: Fuzz\ndefaults:\n  hold: 20\nstretches:\n  - name: Lunge\n    sides: [left, right]\n" \
        "    cues:\n      - at: 5\n        say: Breathe out.\n"


@given(st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
    st.tuples(st.integers(0, len(VALID)), st.integers(0, 40), st.text(max_size=20)).map(
        lambda t: VALID[: t[0]] + t[2] + VALID[t[0] + t[1]:]),
))
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_loader_never_fails_any_other_way(text: str) -> None:
    """Whatever the text, the loader returns a Routine or raises our one-line error naming the source and line."""
    try:
        routine = parse_routine(text, "fuzz.yaml")
    except RoutineError as error:
        message = str(error)
        assert re.match(r"fuzz\.yaml:\d+: \S", message), message
        assert "\n" not in message
    else:
        assert routine.stretches and routine.name
