"""Whether a spoken line's length is plausible for its text and voice settings.

A clip that fails here is never cached: the stage speaks it again once, then
reports an engine fault naming the line (voiceguide.speech.synth).
"""

from __future__ import annotations

from voiceguide.speech.engine import PACED_MIN_WORDS, VoiceSettings, count_words

FAR_TOO_LONG = 4.0  # any engine: longer than this many times the expected length (plus the slack) is a fault
SLACK_SECONDS = 2.0
PACE_BAND = (0.75, 1.33)  # a paced engine's measured words per minute, as a share of the rate asked for


def expected_seconds(text: str, voice: VoiceSettings) -> float:
    """How long a line should take at the asked rate (words / words per minute)."""
    return count_words(text) * 60 / voice.wpm


def pace_fault(text: str, seconds: float, voice: VoiceSettings, paced: bool) -> str:
    """What is implausible about ``seconds`` of (trimmed) speech for ``text``; '' when it is plausible.

    Every engine: far longer than the text could need. An engine that honours the
    rate (``paced``): a line of PACED_MIN_WORDS words or more whose pace is
    outside PACE_BAND of the rate asked for (a dropped rate setting looks like this).
    """
    words = count_words(text)
    limit = FAR_TOO_LONG * expected_seconds(text, voice) + SLACK_SECONDS
    if seconds > limit:
        return f"{seconds:.1f} s of speech for {words} words (at most {limit:.1f} s expected)"
    if paced and words >= PACED_MIN_WORDS and seconds > 0:
        measured = 60 * words / seconds
        low, high = PACE_BAND
        if not low <= measured / voice.wpm <= high:
            return f"spoken at {measured:.0f} words per minute instead of {voice.wpm}"
    return ""
