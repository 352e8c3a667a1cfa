"""Routine text checked at load time: blank lines, control characters, line breaks in names, phrase templates."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from voiceguide.cli import app
from voiceguide.errors import RoutineError
from voiceguide.routine.load import parse_routine

ONE = "name: x\nstretches:\n  - name: a\n"


def error_of(text: str) -> str:
    with pytest.raises(RoutineError) as info:
        parse_routine(text, "my.yaml")
    return str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ONE + '    cues: [{at: 3, say: " "}]\n', "my.yaml:4: stretches[0].cues[0].say: is blank"),
        (ONE + '    cues: [{at: 3, say: "\\u200b\\u200d\\u2060"}]\n', "my.yaml:4: stretches[0].cues[0].say: is blank"),
        ('name: x\nphrases:\n  numbers: ["", two]\nstretches: [{name: a}]\n',
         "my.yaml:3: phrases.numbers[0]: the word for 1 must not be empty"),
        ('name: x\nphrases:\n  numbers: [one, " "]\nstretches: [{name: a}]\n', "my.yaml:3: phrases.numbers[1]: is blank"),
        ('name: x\nintro: " "\nstretches: [{name: a}]\n', "my.yaml:2: intro: is blank"),
        ('name: x\nclosing: "\\t"\nstretches: [{name: a}]\n', "my.yaml:2: closing: is blank"),
        ('name: x\nphrases: {get_ready: "  "}\nstretches: [{name: a}]\n', "my.yaml:2: phrases.get_ready: is blank"),
        (ONE + '    instructions: "\\u200b"\n', "my.yaml:4: stretches[0].instructions: is blank"),
        ('name: "\\x01\\x02"\nstretches: [{name: a}]\n', "my.yaml:1: name: must be one line of printable text"),
        ('name: "\\u200b"\nstretches: [{name: a}]\n', "my.yaml:1: name: is blank"),
        ('name: "Psoas\\nrelease"\nstretches: [{name: a}]\n',
         "my.yaml:1: name: must be one line of printable text (found a line break"),
        ('name: x\nstretches:\n  - name: "Lunge\\r"\n', "my.yaml:3: stretches[0].name: must be one line"),
        ('name: x\nstretches:\n  - name: "Lunge \\u202eevil"\n', "my.yaml:3: stretches[0].name: must be one line"),
        (ONE + '    sides: [right, "le\\nft"]\n', "my.yaml:4: stretches[0].sides[1]: must be one line of printable text"),
        (ONE + '    cues: [{at: 3, say: "Tilt\\x07"}]\n',
         "my.yaml:4: stretches[0].cues[0].say: contains a control character (U+0007)"),
        ('name: x\nphrases: {hold: "\\x1b[31mHold"}\nstretches: [{name: a}]\n', "my.yaml:2: phrases.hold: contains a control"),
    ],
)
def test_text_that_cannot_be_spoken_or_shown_is_refused_at_load(text: str, expected: str) -> None:
    assert error_of(text).startswith(expected)


@pytest.mark.parametrize(
    ("phrase", "template", "expected"),
    [
        ("next_up", "Next up: {stretch}.", "unknown placeholder {stretch} (placeholders: {name})"),
        ("side", "{} side.", "unknown placeholder {} (placeholders: {side})"),
        ("round", "Round {n of {total}.", "is not a valid template"),
        ("next_up", "{name[999]}", "unknown placeholder {name[999]}"),
        ("side", "{side.__class__.__mro__}", "unknown placeholder {side.__class__.__mro__}"),
        ("side", "{side!r} side", "unknown placeholder {side!r}"),
        ("round", "Round {n:>99999}", "unknown placeholder {n:>99999}"),
        ("round", "Round {0}", "unknown placeholder {0}"),
        ("next_up", "Next {", "is not a valid template"),
        ("side", "}", "is not a valid template"),
    ],
)
def test_phrase_templates_allow_only_their_placeholders(phrase: str, template: str, expected: str) -> None:
    text = f'name: x\nphrases:\n  {phrase}: "{template}"\nstretches: [{{name: a}}]\n'
    assert error_of(text).startswith(f"my.yaml:3: phrases.{phrase}: {expected}")


def test_good_text_still_loads_and_reads_as_written() -> None:
    routine = parse_routine('name: x\nintro: |\n  Two lines\n  of intro\nphrases:\n  hold: ""\n'
                            '  round: "{{{n}}} of {total}"\n  session_end: "Done {ok}"\n'
                            'stretches:\n  - name: a\n    instructions: >-\n      folded\n      text\n')
    assert routine.intro == "Two lines\nof intro\n"  # wrapped text is fine: it is spoken on one line
    assert routine.phrases.round.format(n=1, total=2) == "{1} of 2"
    assert routine.phrases.session_end == "Done {ok}"  # not a template: said as written


def test_blank_line_is_exit_2_before_any_speech(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "blank.yaml"
    path.write_text('name: x\nstretches:\n  - name: a\n    cues: [{at: 3, say: " "}]\n')
    result = CliRunner().invoke(app, ["render", str(path), "-o", str(tmp_path / "x.mp3")])
    assert result.exit_code == 2
    assert f"{path}:4: stretches[0].cues[0].say: is blank" in result.stderr
    assert not (tmp_path / "x.mp3").exists()
