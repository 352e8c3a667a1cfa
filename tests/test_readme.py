"""The README and the CLI's own texts stay true: the plan JSON sample, the starter template, help texts, --version."""

from __future__ import annotations

import json
import re
import shlex
from importlib import metadata
from pathlib import Path

import pytest
from typer.testing import CliRunner

from voiceguide.cli import app
from voiceguide.plan.options import ScriptOptions
from voiceguide.plan.script import build_script, hold_seconds
from voiceguide.routine.builtin import write_starter
from voiceguide.routine.load import load_routine_file

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
runner = CliRunner()
COMMANDS = ["render", "plan", "preview", "validate", "voices", "init", "cache", "list", "schema"]


def _readme_plan_sample() -> tuple[list[str], dict]:
    found = re.search(r"`(voiceguide plan [^`]*--json)` prints.*?```json\n(.*?)```", README, re.DOTALL)
    assert found, "the README's plan --json sample is missing"
    return shlex.split(found[1])[1:], json.loads(found[2])


# espeak-ng's cold output still varies by a few milliseconds a line between runs (its lengths are the speech
# engine's to make identical); a dropped speaking rate (seconds off) or a stale sample is still caught.
TOLERANCE = 0.1


def _same(sample: object, actual: object) -> bool:
    """Equal (times within TOLERANCE s), where a sample text ending in '...' only has to start the actual text."""
    if isinstance(sample, str) and sample.endswith(" ...") and isinstance(actual, str):
        return actual.startswith(sample[:-4])
    if isinstance(sample, float) and isinstance(actual, (int, float)):
        return abs(sample - actual) <= TOLERANCE
    return sample == actual


def test_readme_plan_json_sample_is_what_the_code_prints() -> None:
    args, sample = _readme_plan_sample()
    result = runner.invoke(app, args)  # the real engine, into this test's empty cache
    assert result.exit_code == 0, result.stderr
    actual = json.loads(result.stdout)
    assert list(sample) == list(actual)  # the same keys, in the same order
    for key in ("routine", "duration", "sample_rate", "dropped"):
        assert _same(sample[key], actual[key]), key
    for event in sample["events"]:
        match = next((e for e in actual["events"] if _same(event["start"], e["start"]) and e["kind"] == event["kind"]
                      and e["stretch"] == event["stretch"] and e["side"] == event["side"]), None)
        assert match is not None, f"no {event['kind']} event at {event['start']} s"
        assert list(event) == list(match)
        assert all(_same(event[k], match[k]) for k in event), (event, match)
    for chapter in sample["chapters"]:
        assert any(all(_same(chapter[k], c[k]) for k in chapter) and list(c) == list(chapter)
                   for c in actual["chapters"]), chapter


_WORDS = {10: "ten", 15: "fifteen", 20: "twenty", 25: "twenty-five", 30: "thirty", 40: "forty", 45: "forty-five",
          60: "sixty"}


def test_starter_template_says_what_it_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    routine = load_routine_file(write_starter("mine"))
    build_script(routine)  # it renders as is
    holds = {hold_seconds(routine, s, side, ScriptOptions()) for s in routine.stretches for side in s.sides or [None]}
    intro = (routine.intro or "").lower()
    for seconds in holds:  # every hold it has is announced, and no other
        assert _WORDS[int(seconds)] in intro, (seconds, intro)
    for seconds, word in _WORDS.items():
        if seconds not in holds:
            assert not re.search(rf"\b{word}\b", intro), (word, intro)
    assert f"{len(routine.stretches)}" in intro or ["one", "two", "three"][len(routine.stretches) - 1] in intro


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_no_python_type_names(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    leaked = re.findall(r"<[a-zA-Z][\w\[\], |]*>", result.stdout)
    assert not leaked, leaked


def test_hold_examples_quote_correctly() -> None:
    help_text = " ".join(runner.invoke(app, ["plan", "--help"]).stdout.split())
    example = re.search(r'for one: ("[^"]*")', help_text)
    assert example and shlex.split(example[1]) == ["Runner's stretch=60"]
    result = runner.invoke(app, ["plan", "psoas", "--estimate", "--json", *shlex.split(f"--hold {example[1]}")])
    holds = {round(e["end"] - e["start"], 6) for e in json.loads(result.stdout)["events"]
             if e["kind"] == "hold" and e["stretch"] == "Runner's stretch"}
    assert holds == {60.0}
    for line in re.findall(r"^voiceguide (render psoas --hold .*?)(?:\s+#.*)?$", README, re.MULTILINE):
        args = shlex.split(line)  # every README --hold example is valid shell and a valid plan
        result = runner.invoke(app, ["plan", *args[1:], "--estimate"])
        assert result.exit_code == 0, (line, result.stderr)


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"voiceguide {metadata.version('voiceguide')}\n"
