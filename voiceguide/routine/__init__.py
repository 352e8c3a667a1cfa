"""Stage 1, the routine: YAML read safely into strict frozen models; built-in routines.

``model`` holds the structs, ``load`` turns text and files into them (every
error names file, line and field), ``builtin`` finds the routines shipped as
package data.
"""

from voiceguide.routine.builtin import (
    DEFAULT_ROUTINE,
    builtin_names,
    expand_routine_args,
    load_builtin,
    resolve_routine,
    write_starter,
)
from voiceguide.routine.load import load_routine_file, parse_routine, parse_routine_cached, routine_schema
from voiceguide.routine.model import Cue, Defaults, Phrases, Routine, Stretch, Voice

__all__ = [
    "DEFAULT_ROUTINE", "Cue", "Defaults", "Phrases", "Routine", "Stretch", "Voice", "builtin_names",
    "expand_routine_args", "load_builtin", "load_routine_file", "parse_routine", "parse_routine_cached",
    "resolve_routine", "routine_schema", "write_starter",
]
