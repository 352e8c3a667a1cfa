"""How lines are counted and paced, with the standard library only: the speech workers import this, and every
module a worker imports is memory in every worker and in every line's forked child."""

from __future__ import annotations

import re

PACED_MIN_WORDS = 8  # lines this long have a measurable pace (words per minute)
PACE_TOLERANCE = 0.03  # a paced engine corrects a line whose pace is off the asked rate by more than this

_WORD = re.compile(r"\w+")


def count_words(text: str) -> int:
    """Words in a line, counted as voiceguide counts them everywhere (runs of letters and digits)."""
    return len(_WORD.findall(text))
