"""Stage 1, the routine: YAML read safely into strict frozen models; built-in routines.

``model`` holds the structs, ``load`` turns text and files into them (every
error names file, line and field), ``text`` says what routine text may
contain, ``builtin`` finds the routines shipped as package data. Names are
imported on first use (PEP 562) so the CLI's ``--help`` does not load msgspec.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from voiceguide._lazy import lazy_exports

if TYPE_CHECKING:  # what the lazy names below are, for type checkers and editors
    from voiceguide.routine.builtin import (
        builtin_names,
        expand_routine_args,
        load_builtin,
        resolve_routine,
        write_starter,
    )
    from voiceguide.routine.load import load_routine_file, parse_routine, parse_routine_cached, routine_schema
    from voiceguide.routine.model import Cue, Defaults, Phrases, Routine, Stretch
    from voiceguide.routine.voice import VoiceSettings

DEFAULT_ROUTINE = "psoas"  # what `render` and `plan` use when no routine is named

_EXPORTS = {
    "builtin_names": "builtin", "expand_routine_args": "builtin", "load_builtin": "builtin",
    "resolve_routine": "builtin", "write_starter": "builtin", "load_routine_file": "load", "parse_routine": "load",
    "parse_routine_cached": "load", "routine_schema": "load", "Cue": "model", "Defaults": "model", "Phrases": "model",
    "Routine": "model", "Stretch": "model", "VoiceSettings": "voice",
}


__getattr__ = lazy_exports(__name__, _EXPORTS)


__all__ = [
    "DEFAULT_ROUTINE", "Cue", "Defaults", "Phrases", "Routine", "Stretch", "VoiceSettings", "builtin_names",
    "expand_routine_args", "load_builtin", "load_routine_file", "parse_routine", "parse_routine_cached",
    "resolve_routine", "routine_schema", "write_starter",
]
