"""Fitting a session to a length (--duration): every hold scaled by one factor, found by bisection on the plan."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

from voiceguide.errors import OptionError, PlanError
from voiceguide.plan.blocks import Say
from voiceguide.plan.options import MAX_HOLD_SCALE, ScriptOptions
from voiceguide.plan.script import build_script, longest_hold
from voiceguide.plan.timeline import MAX_SESSION_SECONDS, build_plan
from voiceguide.routine.model import MAX_HOLD_SECONDS, Routine

HOLD_FLOOR = 10.0  # --duration never scales a hold below this many seconds


def fit_to_duration(routine: Routine, options: ScriptOptions, target: float, lengths: Mapping[Say, int]) -> ScriptOptions:
    """Scale every hold (never below HOLD_FLOOR seconds) so the session lasts ``target`` seconds."""
    if not 60 <= target <= MAX_SESSION_SECONDS:
        raise OptionError(f"--duration: must be between 1 minute and {MAX_SESSION_SECONDS // 3600} hours")

    def total(scale: float) -> float | None:
        trial = replace(options, hold_scale=scale, hold_floor=HOLD_FLOOR)
        try:
            # Lines inside holds do not change how long the session lasts; the paced ones (the time left) differ
            # with each scale and are measured only once the scale is found.
            return build_plan(build_script(routine, trial), lambda text: lengths.get(text, 0)).duration
        except PlanError:
            return None  # cues no longer fit: too short

    # The longest scale keeps every hold within the limit (and at most MAX_HOLD_SCALE times as long).
    low, most = 0.001, min(MAX_HOLD_SCALE, MAX_HOLD_SECONDS / longest_hold(routine, options))
    high = most
    longest = total(high)
    if longest is None:  # the longest holds make too long a session (over the 6-hour limit): find the longest that fits
        most = high = _last_that_fits(total, low, high)
        longest = total(high)
    if longest is None or longest < target:
        raise OptionError(f"--duration: {_clock(target)} is longer than this routine can reasonably last "
                          f"(at most {_clock(longest or 0)} with holds scaled {most:.3g}x)")
    shortest = total(low)
    if shortest is None:
        # Holds at the floor are too short for some cue: find the smallest scale where all fit.
        for _ in range(50):
            mid = (low + high) / 2
            low, high = (mid, high) if total(mid) is None else (low, mid)
        low, high = high, most
        shortest = total(low)
    shortest = shortest or 0.0
    if shortest > target:
        raise OptionError(f"--duration: {_clock(target)} is too short; this routine needs at least "
                          f"{_clock(shortest)} (holds never go below {HOLD_FLOOR:g} s and every cue must still fit)")
    for _ in range(60):
        mid = (low + high) / 2
        length = total(mid)
        if length is not None and length > target:
            high = mid
        else:
            low = mid
    return replace(options, hold_scale=min(round(high, 6), most), hold_floor=HOLD_FLOOR)


def _last_that_fits(total: Callable[[float], float | None], low: float, high: float) -> float:
    """The largest scale in [low, high] whose plan can be made (bisection: the plans fail above some scale)."""
    for _ in range(50):
        mid = (low + high) / 2
        low, high = (mid, high) if total(mid) is not None else (low, mid)
    return low


def _clock(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}:{rest:02d}"
