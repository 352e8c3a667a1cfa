"""voiceguide: turn stretch routines into voice-guided audio sessions.

The library is the product; the ``voiceguide`` command is a thin layer over it::

    from voiceguide import resolve_routine, render_session
    routine, name = resolve_routine("psoas")
    result = render_session(routine, Path("psoas.mp3"))
"""

from __future__ import annotations

__version__ = "0.1.0"

from voiceguide.pipeline import RenderResult, SessionOptions, plan_session, render_session
from voiceguide.routine import load_routine_file, parse_routine, resolve_routine
from voiceguide.script import ScriptOptions, build_script
from voiceguide.timeline import Plan, build_plan

__all__ = [
    "Plan", "RenderResult", "ScriptOptions", "SessionOptions", "__version__", "build_plan", "build_script",
    "load_routine_file", "parse_routine", "plan_session", "render_session", "resolve_routine",
]
