"""The one place ``voiceguide.serve`` touches the rest of voiceguide.

Every import of the library (anything from ``voiceguide.*`` other than this
package and ``voiceguide.errors``) lives here, so that a restructure of the
library only needs this file re-pointed. The rest of the package calls the
small functions below and never imports library modules itself.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import msgspec

from voiceguide.export.cover import draw_cover
from voiceguide.pipeline import SessionOptions, Sidecars, engine_for, plan_session, render_session, safe_stem
from voiceguide.plan import ScriptOptions
from voiceguide.routine import builtin_names, load_builtin, load_routine_file, parse_routine, resolve_routine
from voiceguide.routine.model import MAX_HOLD_SECONDS, Routine
from voiceguide.speech import ClipCache

__all__ = [
    "MAX_HOLD_SECONDS", "Routine", "builtin_names", "cover_png", "load_builtin", "load_routine_file", "options_from",
    "parse_routine", "plan_dict", "render_to", "resolve_routine", "routine_outline", "routine_yaml", "safe_stem",
]

_shared: dict[str, Any] = {}
_shared_lock = threading.Lock()


def _engine_and_cache(routine: Routine | None = None) -> tuple[Any, Any]:
    """The engine a routine speaks with (as a render would choose it: its voice.engine, else auto), one per
    engine name, and one cache for every re-plan (building them per request costs time)."""
    engine = engine_for(routine, SessionOptions())
    with _shared_lock:
        engine = _shared.setdefault(f"engine:{engine.name}", engine)
        cache = _shared.setdefault("cache", ClipCache())
        return engine, cache


def options_from(data: dict[str, Any] | None) -> SessionOptions:
    """Editor settings (JSON from the page) as library options.

    Keys: ``holds`` {stretch key: seconds}, ``hold_scale``, ``rest``, ``countdown``, ``tones``, ``halfway``.
    Values are checked by the library itself (OptionError for a bad one).
    """
    data = data or {}
    holds = {str(k): float(v) for k, v in (data.get("holds") or {}).items()}
    rest = data.get("rest")
    countdown = data.get("countdown")
    tones = data.get("tones")
    halfway = data.get("halfway")
    script = ScriptOptions(
        holds=holds,
        hold_scale=float(data.get("hold_scale", 1.0)),
        rest=None if rest is None else float(rest),
        countdown=None if countdown is None else int(countdown),
        tones=None if tones is None else bool(tones),
        halfway=None if halfway is None else bool(halfway),
    )
    return SessionOptions(script=script)


def plan_dict(routine: Routine, options: SessionOptions, estimate: bool = True) -> dict[str, Any]:
    """The plan as JSON-ready data (estimate: nothing is synthesized)."""
    engine, cache = _engine_and_cache(routine)
    return plan_session(routine, options, engine=engine, cache=cache, estimate=estimate).to_dict()


def render_to(routine: Routine, output: Path, options: SessionOptions, progress: Any = None) -> dict[str, Any]:
    """Render to ``output`` (MP3) with the plan JSON and WebVTT beside it; return the plan as data."""
    options = replace(options, fmt="mp3")
    result = render_session(routine, output, options, progress=progress, extras=Sidecars(json=True, vtt=True))
    return result.plan.to_dict()


def cover_png(title: str) -> bytes:
    """The drawn cover art the library embeds in sessions (PNG bytes)."""
    return draw_cover(title)


def routine_outline(routine: Routine) -> dict[str, Any]:
    """What the editor and the library page show of a routine: its stretches and defaults."""
    d = routine.defaults
    return {
        "name": routine.name,
        "description": routine.description,
        "defaults": {"hold": d.hold, "rest": d.rest, "countdown": d.countdown, "tones": d.tones,
                     "halfway": d.halfway},
        "stretches": [
            {"key": s.key, "name": s.name, "sides": list(s.sides or []),
             "hold": s.hold if s.hold is not None else d.hold, "repeat": s.repeat or d.repeat}
            for s in routine.stretches
        ],
    }


def routine_yaml(routine: Routine, settings: dict[str, Any]) -> str:
    """The routine with the editor's settings written into it, as YAML text (comments are not kept)."""
    import yaml

    data = msgspec.to_builtins(routine)
    scale = float(settings.get("hold_scale", 1.0))
    holds = {str(k).casefold(): float(v) for k, v in (settings.get("holds") or {}).items()}
    defaults = data.setdefault("defaults", {})
    base_hold = routine.defaults.hold
    for stretch, model in zip(data["stretches"], routine.stretches, strict=True):
        given = holds.get(model.key.casefold(), holds.get(model.name.casefold()))
        hold = given if given is not None else (model.hold if model.hold is not None else base_hold)
        if isinstance(hold, dict):
            stretch["hold"] = {side: round(seconds * scale, 3) for side, seconds in hold.items()}
        else:
            stretch["hold"] = round(float(hold) * scale, 3)
    for key in ("rest", "countdown", "tones", "halfway"):
        if settings.get(key) is not None:
            defaults[key] = settings[key]
            for stretch in data["stretches"]:
                stretch.pop(key, None)
    return yaml.safe_dump(_without_nulls(data), sort_keys=False, allow_unicode=True, width=100)


def _without_nulls(value: Any) -> Any:
    """Unset optional fields left out, so the file reads like one a person wrote."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None and v != []}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value
