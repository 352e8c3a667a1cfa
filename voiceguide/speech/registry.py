"""Every speech engine by name: how to build it and how to check it is installed.

Adding an engine is one module (an ``Engine``: usually a ``WorkerEngine`` with
its worker) plus one ``register`` line at the bottom of this file.
"""

from __future__ import annotations

import inspect
import os
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voiceguide.errors import OptionError, SpeechError
from voiceguide.speech.engine import SYNTH_TIMEOUT, Engine, VoiceInfo, installed_version

DEFAULT_ENGINE = "espeak"


@dataclass(frozen=True)
class EngineEntry:
    """One registered engine."""

    name: str
    summary: str  # one line for listings and error messages
    factory: Callable[..., Engine]  # keyword options -> a ready engine; raises OptionError on bad options
    check: Callable[[], None]  # raises SpeechError naming the fix when the engine is not installed
    aliases: tuple[str, ...] = ()


_ENGINES: dict[str, EngineEntry] = {}
_ALIASES: dict[str, str] = {}


def register(entry: EngineEntry) -> None:
    """Add an engine (and its aliases) under its name."""
    for name in (entry.name, *entry.aliases):
        if name in _ENGINES or name in _ALIASES:
            raise ValueError(f"speech engine {name!r} is registered twice")
    _ENGINES[entry.name] = entry
    _ALIASES.update(dict.fromkeys(entry.aliases, entry.name))


def engine_names() -> list[str]:
    """The registered engines' names (aliases not included), default first."""
    return sorted(_ENGINES, key=lambda name: (name != DEFAULT_ENGINE, name))


def engine_entry(name: str) -> EngineEntry:
    """The entry for ``name`` or one of its aliases; OptionError listing the engines otherwise."""
    if not isinstance(name, str):
        raise OptionError(f"speech engine name must be text, got {type(name).__name__}")
    key = name.strip().lower()
    entry = _ENGINES.get(_ALIASES.get(key, key))
    if entry is None:
        raise OptionError(f"unknown speech engine {name!r} (engines: {', '.join(engine_names())})")
    return entry


def get_engine(name: str = DEFAULT_ENGINE, **options: Any) -> Engine:
    """Build the engine called ``name`` with its options (e.g. ``workers``, ``timeout``; ``template`` for command).

    An unknown name or option is an OptionError; the engine is not checked for
    installation here (``check_engine`` does, and synthesis reports it anyway).
    """
    entry = engine_entry(name)
    accepted = inspect.signature(entry.factory).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise OptionError(f"speech engine {entry.name}: unknown option {', '.join(unknown)} "
                              f"(options: {', '.join(accepted) or 'none'})")
    return entry.factory(**options)


def check_engine(name: str = DEFAULT_ENGINE) -> None:
    """Raise SpeechError naming the fix if the engine called ``name`` is not installed."""
    engine_entry(name).check()


def _common(workers: int | None, timeout: float) -> None:
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise OptionError(f"speech engine workers: expected a whole number of at least 1, got {workers!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < 3600:
        raise OptionError(f"speech engine timeout: expected seconds between 0 and 3600, got {timeout!r}")


def _espeak(*, workers: int | None = None, timeout: float = SYNTH_TIMEOUT) -> Engine:
    from voiceguide.speech.espeak import EspeakEngine

    _common(workers, timeout)
    return EspeakEngine(workers=workers, timeout=timeout)


def _espeak_installed() -> None:
    installed_version("pyttsx3")
    installed_version("espeakng-loader")


def _command(*, template: str | Sequence[str] = (), workers: int | None = None,
             timeout: float = SYNTH_TIMEOUT) -> Engine:
    from voiceguide.speech.command import CommandEngine

    _common(workers, timeout)
    if isinstance(template, str):
        try:
            template = shlex.split(template)  # split like a shell would, but never run by one
        except ValueError as exc:
            raise OptionError(f"engine command: {exc}") from None
    if not isinstance(template, Sequence) or not all(isinstance(arg, str) for arg in template):
        raise OptionError("engine command: expected a command line or a list of arguments")
    return CommandEngine(template, workers=workers, timeout=timeout)


def _command_installed() -> None:
    """The command engine needs nothing but its program, which only its template names."""


def _piper(*, model: str | Path | None = None, workers: int | None = None, timeout: float = SYNTH_TIMEOUT) -> Engine:
    from voiceguide.speech.piper import PiperEngine, require_piper

    _common(workers, timeout)
    if model is not None and not isinstance(model, (str, Path)):
        raise OptionError(f"piper voice: expected the path of a .onnx voice file, got {model!r}")
    path = None if model is None else Path(model)
    try:
        require_piper(path)
    except SpeechError as exc:  # asked for by name: a usage error, before any work
        raise OptionError(str(exc)) from None
    return PiperEngine(model=path, workers=workers, timeout=timeout)


def _piper_installed() -> None:
    from voiceguide.speech.piper import require_piper

    require_piper()


AUTO = "auto"  # the natural voice when its extra is installed, else espeak


def resolve_engine_name(name: str | None = None) -> str:
    """The engine a name stands for: ``auto`` (or nothing: $VOICEGUIDE_ENGINE, else auto) picks piper when the
    natural voice is installed, else espeak; any other name must be registered (OptionError otherwise)."""
    chosen = (name or os.environ.get("VOICEGUIDE_ENGINE") or AUTO).strip().lower()
    if chosen == AUTO:
        from voiceguide.speech.piper import piper_available

        return "piper" if piper_available() else DEFAULT_ENGINE
    return engine_entry(chosen).name


def engine_catalogue() -> list[tuple[str, bool, list[VoiceInfo], str]]:
    """Every engine that speaks on its own (not ``command``): (name, whether ``auto`` picks it, its voices,
    or why it has none here: the install command)."""
    chosen = resolve_engine_name(AUTO)
    out: list[tuple[str, bool, list[VoiceInfo], str]] = []
    for name in engine_names():
        if name == "command":
            continue
        try:
            check_engine(name)
        except SpeechError as exc:
            out.append((name, False, [], f"not installed ({exc})"))
            continue
        out.append((name, name == chosen, get_engine(name).voices(), ""))
    return out


register(EngineEntry("espeak", "espeak-ng through pyttsx3 (built in)", _espeak, _espeak_installed, ("pyttsx3",)))
register(EngineEntry("piper", "a natural offline voice: Piper, from pip install 'voiceguide[natural]'", _piper,
                     _piper_installed, ("natural",)))
register(EngineEntry("command", "any TTS program run once per line from an argument template", _command,
                     _command_installed))
