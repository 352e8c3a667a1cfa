"""Script options, checked when they are built: every value a user can change without editing the routine.

An option object that exists is valid: a wrong type, NaN, infinity or a value
out of range raises OptionError (exit 2) naming the option, before any work.
What depends on the routine (a stretch name, a hold scaled past the limit) is
checked when the script is built, still before anything is synthesized.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from voiceguide.errors import OptionError
from voiceguide.routine.model import MAX_HOLD_SECONDS

SIDE_ORDERS = ("as-written", "reversed", "right-first", "left-first")
MAX_HOLD_SCALE = 100.0
MAX_COUNTDOWN = 10
HOLD_RESOLUTION = 0.001  # holds are rounded to the millisecond; a shorter one would be no hold at all


def check_number(option: str, value: Any, low: float, high: float, *, above: bool = False, unit: str = "",
                 whole: bool = False) -> float:
    """``value`` as a number in [low, high] (``above``: more than ``low``); OptionError naming ``option`` if not."""
    kind = int if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind):
        wanted = "a whole number" if whole else "a number"
        raise OptionError(f"{option}: must be {wanted}{unit and ' of ' + unit.strip()} (got {value!r})")
    if not math.isfinite(value) or value < low or (above and value == low) or value > high:
        least = f"more than {low:g}" if above else f"at least {low:g}"
        raise OptionError(f"{option}: must be {least} and at most {high:g}{unit} (got {value:g})")
    return value


def check_hold(option: str, seconds: Any) -> float:
    """A hold length in seconds: more than 0 once rounded to the millisecond, at most the hold limit."""
    check_number(option, seconds, 0.0, MAX_HOLD_SECONDS, above=True, unit=" seconds")
    if round(seconds, 3) < HOLD_RESOLUTION:
        raise OptionError(f"{option}: {seconds:g} s rounds to no hold at all; holds are at least {HOLD_RESOLUTION:g} s")
    return float(seconds)


def _check_flag(option: str, value: Any) -> None:
    if value is not None and not isinstance(value, bool):
        raise OptionError(f"{option}: must be true, false or None (got {value!r})")


@dataclass(frozen=True)
class ScriptOptions:
    """Adjustments a user makes without editing the routine (CLI flags and library callers)."""

    hold: float | None = None  # every hold, in seconds
    holds: Mapping[str, float] = field(default_factory=dict)  # stretch name or id -> seconds
    hold_scale: float = 1.0
    rest: float | None = None
    countdown: int | None = None
    halfway: bool | None = None
    side_order: str = "as-written"
    hold_floor: float = 0.0  # no hold is scaled below this (used when fitting a target duration)
    tones: bool | None = None  # chimes at hold start and end, a bell at the end; None: as the routine says

    def __post_init__(self) -> None:
        if self.hold is not None:
            check_hold("--hold", self.hold)
        if not isinstance(self.holds, Mapping):
            raise OptionError(f"--hold: per-stretch holds must be a mapping of stretch to seconds (got {self.holds!r})")
        for name, seconds in self.holds.items():
            if not isinstance(name, str) or not name.strip():
                raise OptionError(f"--hold: a stretch name must be non-empty text (got {name!r})")
            check_hold(f"--hold {name}", seconds)
        object.__setattr__(self, "holds", dict(self.holds))  # a copy: the caller's dict may change later
        check_number("--hold-scale", self.hold_scale, 0.0, MAX_HOLD_SCALE, above=True)
        if self.rest is not None:
            check_number("--rest", self.rest, 0.0, MAX_HOLD_SECONDS, unit=" seconds")
        if self.countdown is not None:
            check_number("--countdown", self.countdown, 0, MAX_COUNTDOWN, whole=True)
        check_number("hold_floor", self.hold_floor, 0.0, MAX_HOLD_SECONDS, unit=" seconds")
        _check_flag("--halfway", self.halfway)
        _check_flag("--tones", self.tones)
        if self.side_order not in SIDE_ORDERS:
            raise OptionError(f"--sides: must be one of {', '.join(SIDE_ORDERS)} (got {self.side_order!r})")
