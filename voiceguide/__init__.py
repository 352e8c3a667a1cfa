"""voiceguide: turn stretch routines into voice-guided audio sessions.

The library is the product; the ``voiceguide`` command is a thin layer over it::

    from voiceguide import resolve_routine, render_session
    routine, name = resolve_routine("psoas")
    result = render_session(routine, Path("psoas.mp3"))
"""

from __future__ import annotations

__version__ = "0.1.0"

# Names are imported on first use (PEP 562) so that `import voiceguide` and the
# CLI's --help stay fast: the pipeline loads only when needed.
_EXPORTS = {
    "RenderResult": "pipeline", "SessionOptions": "pipeline", "plan_session": "pipeline",
    "render_session": "pipeline", "check_routine": "pipeline", "load_routine_file": "routine", "parse_routine": "routine",
    "resolve_routine": "routine", "ScriptOptions": "plan", "build_script": "plan",
    "Plan": "plan", "build_plan": "plan",
}


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'voiceguide' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"voiceguide.{module}"), name)


__all__ = [
    "Plan", "RenderResult", "ScriptOptions", "SessionOptions", "__version__", "build_plan", "build_script", "check_routine",
    "load_routine_file", "parse_routine", "plan_session", "render_session", "resolve_routine",
]
