"""The one voice-settings type: a routine's ``voice`` block, the CLI's voice flags and the library's argument.

Read from YAML, msgspec checks the annotated bounds and reports the routine's
file, line and field; built in code, ``__post_init__`` checks the same bounds
and raises OptionError naming the field, so a bad value never reaches an engine.
"""

# No postponed annotations (see model.py): msgspec reads these as objects, not as text to evaluate.
import math
from typing import Annotated, Literal, get_args

import msgspec
from msgspec import Meta

from voiceguide.errors import OptionError

EngineChoice = Literal["auto", "espeak", "pyttsx3", "piper"]
ENGINE_CHOICES: tuple[str, ...] = get_args(EngineChoice)
DEFAULT_WPM = 175  # the speaking rate, in words per minute, when neither routine nor caller sets one

# The documented ranges of the voice settings.
RATE_RANGE = (80, 450)  # words per minute
VOLUME_RANGE = (0.0, 1.0)
PITCH_RANGE = (0, 100)

_NOT_BLANK = r"\S"  # at least one character that is not white space


class VoiceSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Which engine and voice speak, and how; every field is optional (None: the engine's default).

    ``rate`` is the speaking rate in words per minute as voiceguide measures it
    (words / trimmed seconds); engines translate it into their own parameter.
    """

    engine: Annotated[EngineChoice | None, Meta(
        description="Speech engine: auto (the natural voice when installed), espeak or piper.")] = None
    id: Annotated[str, Meta(pattern=_NOT_BLANK, description=(
        "Engine voice id, e.g. 'gmw/en-us', or a Piper voice file (see `voiceguide voices`)."))] | None = None
    language: Annotated[str, Meta(pattern=_NOT_BLANK, description=(
        "Language code, e.g. 'en-us'; picks a matching voice."))] | None = None
    rate: Annotated[int, Meta(ge=RATE_RANGE[0], le=RATE_RANGE[1],
                              description="Speaking rate in words per minute.")] | None = None
    volume: Annotated[float, Meta(ge=VOLUME_RANGE[0], le=VOLUME_RANGE[1],
                                  description="Engine volume, 0 to 1.")] | None = None
    pitch: Annotated[int, Meta(ge=PITCH_RANGE[0], le=PITCH_RANGE[1],
                               description="Voice pitch, 0 to 100 (espeak's default is 50).")] | None = None

    def __post_init__(self) -> None:
        # msgspec checks the annotations only when decoding; built in code, check the same bounds here.
        if self.engine is not None and self.engine not in ENGINE_CHOICES:
            raise OptionError(f"voice engine: {self.engine!r} is not one of {', '.join(ENGINE_CHOICES)}")
        _check_text("id", self.id)
        _check_text("language", self.language)
        _check_number("rate", self.rate, *RATE_RANGE, integer=True)
        _check_number("volume", self.volume, *VOLUME_RANGE, integer=False)
        _check_number("pitch", self.pitch, *PITCH_RANGE, integer=True)

    def over(self, base: "VoiceSettings") -> "VoiceSettings":
        """These settings with every field left unset taken from ``base`` (a language set here drops base's id)."""
        return VoiceSettings(
            engine=self.engine or base.engine,
            id=self.id or (None if self.language else base.id),
            language=self.language or base.language,
            rate=self.rate or base.rate,
            volume=self.volume if self.volume is not None else base.volume,
            pitch=self.pitch if self.pitch is not None else base.pitch,
        )

    @property
    def wpm(self) -> int:
        """The speaking rate asked for, in words per minute (the default when unset)."""
        return self.rate or DEFAULT_WPM

    def synthesis(self) -> dict[str, object]:
        """What an engine is asked to do with a line: every field but the engine's name (for workers and cache keys)."""
        return {"id": self.id, "language": self.language, "rate": self.rate, "volume": self.volume,
                "pitch": self.pitch}


def _check_text(field: str, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise OptionError(f"voice {field}: expected text, got {type(value).__name__}")
    if not value.strip():
        raise OptionError(f"voice {field}: must not be blank")


def _check_number(field: str, value: object, low: float, high: float, integer: bool) -> None:
    if value is None:
        return
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        wanted = "a whole number" if integer else "a number"
        raise OptionError(f"voice {field}: expected {wanted}, got {type(value).__name__} {value!r}")
    if not math.isfinite(value) or not low <= value <= high:
        raise OptionError(f"voice {field}: {value!r} is out of range ({low:g} to {high:g})")
