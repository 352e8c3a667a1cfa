"""voiceguide: turn stretch routines into voice-guided audio sessions.

The library is the product; the ``voiceguide`` command is a thin layer over it::

    from voiceguide import resolve_routine, render_session
    routine, name = resolve_routine("psoas")
    result = render_session(routine, Path("psoas.mp3"))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from voiceguide._lazy import lazy_exports

if TYPE_CHECKING:  # what the lazy names below are, for type checkers and editors
    from voiceguide.pipeline import RenderResult, SessionOptions, check_routine, plan_session, render_session
    from voiceguide.plan import Plan, ScriptOptions, build_plan, build_script
    from voiceguide.routine import load_routine_file, parse_routine, resolve_routine

__version__ = "0.1.0"

# Names are imported on first use (PEP 562) so that `import voiceguide` and the
# CLI's --help stay fast: the pipeline loads only when needed.
_EXPORTS = {
    "RenderResult": "pipeline", "SessionOptions": "pipeline", "plan_session": "pipeline",
    "render_session": "pipeline", "check_routine": "pipeline", "load_routine_file": "routine", "parse_routine": "routine",
    "resolve_routine": "routine", "ScriptOptions": "plan", "build_script": "plan",
    "Plan": "plan", "build_plan": "plan",
}


__getattr__ = lazy_exports(__name__, _EXPORTS)


__all__ = [
    "Plan", "RenderResult", "ScriptOptions", "SessionOptions", "__version__", "build_plan", "build_script", "check_routine",
    "load_routine_file", "parse_routine", "plan_session", "render_session", "resolve_routine",
]
