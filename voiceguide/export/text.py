"""One sanitizer for every piece of text export writes: tags, chapter titles and sidecar lines.

Routine text is checked when it is loaded, but export must be safe whatever it
is given (the library can be called directly): a line break or control
character would cut an Ogg chapter title, break an LRC or M3U line or end a
WebVTT cue early, and a lone surrogate cannot be encoded at all.
"""

from __future__ import annotations

import re
import unicodedata

# Control characters and line/paragraph separators become spaces; lone surrogates the replacement character.
_BREAKING = {"Cc", "Zl", "Zp"}
_SPACES = re.compile(r"\s+")


def safe_text(value: str) -> str:
    """``value`` on one line: control characters and line breaks as single spaces, trimmed; never raises."""
    text = str(value)
    if text.isprintable() and text.strip() == text and "  " not in text:
        return text  # the common case, unchanged
    cleaned = "".join(" " if unicodedata.category(c) in _BREAKING else "\ufffd" if unicodedata.category(c) == "Cs"
                      else c for c in text)
    return _SPACES.sub(" ", cleaned).strip()
