"""How lines are counted and paced, with the standard library only: the speech workers import this, and every
module a worker imports is memory in every worker and in every line's forked child."""

from __future__ import annotations

import re

PACED_MIN_WORDS = 8  # lines this long have a measurable pace (words per minute)
PACE_TOLERANCE = 0.03  # a paced engine corrects a line whose pace is off the asked rate by more than this

# Runs of letters and digits; an apostrophe inside a word keeps it one word ("don't", "that's", "hip's"), as
# words per minute are counted. (Until WORDS_VERSION 2 "that's" counted two: espeak then paced such lines for
# a word too many, while the piper worker, counting its own way, did not.)
_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
WORDS_VERSION = 2  # part of every paced engine's cache identity: a new count, new clips


def count_words(text: str) -> int:
    """Words in a line, counted as voiceguide counts them everywhere (runs of letters and digits, a contraction
    or possessive being one word)."""
    return len(_WORD.findall(text))
