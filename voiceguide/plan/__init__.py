"""Stage 2, the plan: a routine becomes a cue script, then an exact timeline in samples.

Pure: no audio and no I/O. ``script`` decides what is said and which windows
of time are fixed; ``timeline`` places every line at an exact sample once the
lines' lengths are known; ``tones`` says which tones exist and how long they last.
"""

from voiceguide.plan.script import CueScript, Line, ScriptOptions, build_script, spoken_texts
from voiceguide.plan.timeline import RATE, Chapter, Event, Plan, build_plan, to_samples

__all__ = ["RATE", "Chapter", "CueScript", "Event", "Line", "Plan", "ScriptOptions", "build_plan", "build_script",
           "spoken_texts", "to_samples"]
