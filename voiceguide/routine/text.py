"""Text from a routine as it is spoken and shown: what is cleaned, what is refused, which templates are valid.

Names and labels become chapter titles, tags and file names, so they must be
one line of printable text. Spoken text may be wrapped over lines (YAML's
``|`` and ``>``) and is cleaned to one line; other control characters are
refused. Anything blank once cleaned would reach the speech engine as nothing
to say, so it is refused too (an empty phrase, ``""``, still means "say nothing").
"""

from __future__ import annotations

import string
import unicodedata

_INVISIBLE = {"Cc", "Cf", "Zl", "Zp"}
_BIDI_CONTROLS = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_WRAPPING = set("\t\n\r")


def plain_text(text: str) -> str:
    """What the speech engine is given: printable text on one line, nothing it could read as markup.

    Control and invisible format characters (NUL, escapes, bidi overrides,
    zero-width joiners) become spaces and runs of whitespace collapse, so a
    line is spoken (and shown in sidecars) exactly as it reads.
    """
    if not text.isprintable():  # the common case skips the per-character scan
        text = "".join(" " if unicodedata.category(c) in _INVISIBLE else c for c in text)
    return " ".join(text.split())


def _blank(text: str) -> str | None:
    if text and not plain_text(text):
        return "is blank (only spaces or invisible characters)"
    return None


def label_problem(text: str) -> str | None:
    """Why a name or label (a chapter title, tag, side) cannot be used, or None."""
    for char in text:
        if unicodedata.category(char) in {"Cc", "Zl", "Zp"} or char in _BIDI_CONTROLS:
            kind = "a line break" if char in "\n\r\x0b\x0c\x85\u2028\u2029" else "a control character"
            return f"must be one line of printable text (found {kind}, U+{ord(char):04X})"
    return _blank(text)


def spoken_problem(text: str) -> str | None:
    """Why a spoken text cannot be used, or None (line breaks and tabs are fine: they become spaces)."""
    for char in text:
        if unicodedata.category(char) == "Cc" and char not in _WRAPPING:
            return f"contains a control character (U+{ord(char):04X})"
    return _blank(text)


def template_problem(template: str, allowed: tuple[str, ...]) -> str | None:
    """Why a phrase template cannot be filled in, or None: only plain ``{name}`` placeholders from ``allowed``."""
    hint = ", ".join("{" + name + "}" for name in allowed) if allowed else "none"
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"is not a valid template ({exc}; write {{{{ and }}}} for literal braces; placeholders: {hint})"
    for _, field, spec, conversion in parts:
        if field is None:
            continue
        shown = "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        if field not in allowed or spec or conversion:
            return f"unknown placeholder {shown} (placeholders: {hint})"
    return spoken_problem(template)
