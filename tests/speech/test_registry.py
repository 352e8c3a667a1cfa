"""One registry of speech engines: names, aliases, options, installation checks; get_engine is what callers use."""

from __future__ import annotations

import sys

import pytest

from voiceguide.errors import OptionError
from voiceguide.speech import registry
from voiceguide.speech.command import CommandEngine
from voiceguide.speech.espeak import EspeakEngine, Pyttsx3Engine
from voiceguide.speech.registry import EngineEntry, check_engine, engine_names, get_engine
from voiceguide.speech.worker import WorkerEngine


def test_espeak_is_the_default_and_pyttsx3_its_alias() -> None:
    assert engine_names()[0] == "espeak" and set(engine_names()) >= {"espeak", "command"}
    assert type(get_engine()) is EspeakEngine
    engine = get_engine("pyttsx3", workers=1, timeout=5)
    assert isinstance(engine, EspeakEngine) and engine.workers == 1 and engine.timeout == 5
    assert Pyttsx3Engine is EspeakEngine  # the old name still works
    check_engine("espeak")


def test_command_engine_from_a_command_line_or_a_list() -> None:
    engine = get_engine("command", template="my-tts --out {output} --say '{text}'")
    assert isinstance(engine, CommandEngine) and engine.template == ["my-tts", "--out", "{output}", "--say", "{text}"]
    assert get_engine("command", template=["my-tts", "{output}"]).template == ["my-tts", "{output}"]
    with pytest.raises(OptionError, match=r"must contain \{output\}"):
        get_engine("command", template="my-tts")
    with pytest.raises(OptionError, match="No closing quotation"):
        get_engine("command", template="my-tts '{output}")


@pytest.mark.parametrize("name", ["festival", "", "espeak-ng "])
def test_an_unknown_engine_lists_the_engines(name: str) -> None:
    with pytest.raises(OptionError, match=r"unknown speech engine .*\(engines: espeak, command"):
        get_engine(name)


@pytest.mark.parametrize(("options", "field"), [
    ({"workers": 0}, "workers"), ({"workers": "2"}, "workers"), ({"workers": True}, "workers"),
    ({"timeout": float("nan")}, "timeout"), ({"timeout": -1}, "timeout"), ({"timeout": float("inf")}, "timeout"),
])
def test_bad_engine_options_are_option_errors(options: dict[str, object], field: str) -> None:
    with pytest.raises(OptionError, match=field):
        get_engine("espeak", **options)


def test_an_unknown_option_is_an_option_error_not_a_type_error() -> None:
    with pytest.raises(OptionError, match="voice"):
        get_engine("espeak", voice="en")
    with pytest.raises(OptionError, match="engine name must be text"):
        get_engine(3)  # type: ignore[arg-type]


def test_adding_an_engine_is_one_registration(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new WorkerEngine (as Piper's will be) plugs in with one line and is built by name."""

    class EchoEngine(WorkerEngine):
        name = "echo"
        command = (sys.executable, "-c", "pass")

    monkeypatch.setattr(registry, "_ENGINES", dict(registry._ENGINES))
    monkeypatch.setattr(registry, "_ALIASES", dict(registry._ALIASES))
    registry.register(EngineEntry("echo", "test engine", lambda **options: EchoEngine(**options), lambda: None))
    assert "echo" in engine_names() and isinstance(get_engine("echo", workers=1), EchoEngine)
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(EngineEntry("echo", "again", EchoEngine, lambda: None))
