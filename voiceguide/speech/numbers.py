"""Numbers and durations written out as words, for engines that read them badly.

Piper phonemizes "45s" as "forty five z" and "1m30s" as "one em thirty z"
(measured with en_US-joe-medium), so the natural voice is sent words:
``speakable("Hold for 1m30s")`` -> ``"Hold for one minute thirty seconds"``.
English only; deterministic (the result is what the engine is sent, and
``SPEAKABLE_VERSION`` goes into the engine identity, hence the cache key).
"""

from __future__ import annotations

import re

SPEAKABLE_VERSION = 1  # bump when the output of speakable() changes

_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
         "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL_WORDS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                  "nine": "ninth", "twelve": "twelfth"}


def number_words(n: int) -> str:
    """``45`` -> ``"forty-five"``, ``1200`` -> ``"one thousand two hundred"``."""
    if n < 0:
        return "minus " + number_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + ("-" + _ONES[ones] if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return _ONES[hundreds] + " hundred" + (" " + number_words(rest) if rest else "")
    for size, word in _SCALES:
        if n >= size:
            high, rest = divmod(n, size)
            return number_words(high) + " " + word + (" " + number_words(rest) if rest else "")
    raise AssertionError("unreachable")


def ordinal_words(n: int) -> str:
    """``1`` -> ``"first"``, ``21`` -> ``"twenty-first"``, ``40`` -> ``"fortieth"``."""
    words = number_words(n)
    head, sep, last = words.rpartition("-") if "-" in words.rsplit(" ", 1)[-1] else words.rpartition(" ")
    if last in _ORDINAL_WORDS:
        last = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return head + sep + last


def _unit(n: int, singular: str) -> str:
    return f"{number_words(n)} {singular}" + ("" if n == 1 else "s")


# 1h, 2m, 45s, 1m30s, 1h5m, 90sec, 2min, 10 s, 5 mins ... (h/m/s with no letter after them)
_DURATION = re.compile(
    r"(?<![\w.])(?=\d)"
    r"(?:(?P<h>\d+)\s?(?:h|hr|hrs|hours?)(?![a-z]))?\s?"
    r"(?:(?P<m>\d+)\s?(?:m|min|mins|minutes?)(?![a-z]))?\s?"
    r"(?:(?P<s>\d+)\s?(?:s|sec|secs|seconds?)(?![a-z]))?"
    r"(?![\w])",
    re.IGNORECASE,
)
_TIMES = re.compile(r"(?<![\w.])(?:(\d+)\s?[x\u00d7](?![\w])|[x\u00d7](\d+)(?![\w.]))", re.IGNORECASE)
_ORDINAL = re.compile(r"(?<![\w.])(\d+)(?:st|nd|rd|th)(?![\w])", re.IGNORECASE)
_PERCENT = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s?%")
_DECIMAL = re.compile(r"(?<![\w.])(\d+)\.(\d+)(?!\w|\.\d)")
_INTEGER = re.compile(r"(?<!\w)(?<!\d\.)\d+(?:,\d{3})*(?!\w|\.\d)")


def _duration(match: re.Match[str]) -> str:
    parts = [(match.group(key), word) for key, word in (("h", "hour"), ("m", "minute"), ("s", "second"))]
    spoken = [_unit(int(value), word) for value, word in parts if value is not None]
    if not spoken:
        return match.group(0)
    trailing = match.group(0)[len(match.group(0).rstrip()):]
    return " ".join(spoken) + trailing


def _decimal(whole: str, fraction: str) -> str:
    return number_words(int(whole)) + " point " + " ".join(_ONES[int(d)] for d in fraction)


def speakable(text: str) -> str:
    """``text`` with durations, counts, ordinals, percentages and numbers written as English words."""
    text = _DURATION.sub(_duration, text)
    text = _TIMES.sub(lambda m: number_words(int(m.group(1) or m.group(2))) + " times", text)
    text = _ORDINAL.sub(lambda m: ordinal_words(int(m.group(1))), text)
    text = _PERCENT.sub(lambda m: (_decimal(*m.group(1).split(".")) if "." in m.group(1)
                                   else number_words(int(m.group(1)))) + " percent", text)
    text = _DECIMAL.sub(lambda m: _decimal(m.group(1), m.group(2)), text)
    return _INTEGER.sub(lambda m: number_words(int(m.group(0).replace(",", ""))), text)
