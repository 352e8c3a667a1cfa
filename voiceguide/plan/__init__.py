"""Stage 2, the plan: a routine becomes a cue script, then an exact timeline in samples.

Pure: no audio and no I/O. ``script`` decides what is said and which windows
of time are fixed; ``timeline`` places every line at an exact sample once the
lines' lengths are known; ``tones`` says which tones exist and how long they last.
"""

from voiceguide.plan.blocks import CueScript, Kind, Line, Role
from voiceguide.plan.options import ScriptOptions
from voiceguide.plan.script import build_script, spoken_texts
from voiceguide.plan.timeline import RATE, Chapter, Event, Plan, build_plan, to_samples
from voiceguide.plan.tones import Tone

__all__ = ["RATE", "Chapter", "CueScript", "Event", "Kind", "Line", "Plan", "Role", "ScriptOptions", "Tone", "build_plan",
           "build_script", "spoken_texts", "to_samples"]
