"""What every speech engine offers: voice settings, clips and the Engine protocol."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from voiceguide.errors import OptionError, SpeechError

if TYPE_CHECKING:
    from voiceguide.routine.model import Voice

CLIP_FORMAT = 2  # bump when synthesis or clip processing changes, so old cache entries are not reused
SYNTH_TIMEOUT = 30.0  # seconds one line may take (or a worker may take to start) before the engine is assumed hung
DEFAULT_WPM = 175  # the speaking rate, in words per minute, when neither routine nor caller sets one
PACED_MIN_WORDS = 8  # lines this long have a measurable pace (words per minute)
PACE_TOLERANCE = 0.03  # a paced engine corrects a line whose pace is off the asked rate by more than this

# The documented ranges of the voice settings (the routine model uses the same ones).
RATE_RANGE = (80, 450)
VOLUME_RANGE = (0.0, 1.0)
PITCH_RANGE = (0, 100)

_WORD = re.compile(r"\w+")


def count_words(text: str) -> int:
    """Words in a line, counted as voiceguide counts them everywhere (runs of letters and digits)."""
    return len(_WORD.findall(text))


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


@dataclass(frozen=True)
class VoiceSettings:
    """Which voice speaks and how; None means the engine's default. Checks itself when built.

    ``rate`` is the speaking rate in words per minute as voiceguide measures it
    (words / trimmed seconds); engines translate it into their own parameter.
    A bad value raises OptionError naming the field.
    """

    id: str | None = None
    language: str | None = None
    rate: int | None = None  # words per minute, 80-450
    volume: float | None = None  # 0-1
    pitch: int | None = None  # 0-100 where the engine supports it

    def __post_init__(self) -> None:
        _check_text("id", self.id)
        _check_text("language", self.language)
        _check_number("rate", self.rate, *RATE_RANGE, integer=True)
        _check_number("volume", self.volume, *VOLUME_RANGE, integer=False)
        _check_number("pitch", self.pitch, *PITCH_RANGE, integer=True)

    @classmethod
    def from_routine(cls, voice: Voice | None) -> VoiceSettings:
        """The settings a routine's ``voice`` block asks for (already validated when the routine was loaded)."""
        if voice is None:
            return cls()
        return cls(id=voice.id, language=voice.language, rate=voice.rate, volume=voice.volume, pitch=voice.pitch)

    def over(self, base: VoiceSettings) -> VoiceSettings:
        """These settings with every field left unset taken from ``base`` (a language set here drops base's id)."""
        return VoiceSettings(
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


@dataclass(frozen=True)
class Clip:
    """A processed spoken line: mono 16-bit PCM at ``rate``."""

    pcm: bytes
    rate: int

    @property
    def samples(self) -> int:
        """Length in samples."""
        return len(self.pcm) // 2


@dataclass(frozen=True)
class VoiceInfo:
    """A voice an engine offers."""

    id: str
    name: str
    languages: tuple[str, ...]


class Engine(Protocol):
    """A speech engine: writes one WAV file per text.

    An engine may also set a class attribute ``paced = True`` when it honours
    ``VoiceSettings.rate``; then a line whose pace is far off the rate asked for
    is treated as an engine fault (voiceguide.speech.pacing).
    """

    name: str

    def identity(self) -> str:
        """A string that changes whenever the engine's output could change (for cache keys)."""
        ...

    def synthesize(self, texts: Sequence[str], voice: VoiceSettings, folder: Path,
                   on_done: Callable[[str], None] | None = None) -> dict[str, Path]:
        """Write a WAV for every text into ``folder``; return text -> path. Call ``on_done`` after each line."""
        ...

    def voices(self) -> list[VoiceInfo]:
        """The voices on offer."""
        ...


def installed_version(distribution: str) -> str:
    """A distribution's installed version; SpeechError with the fix if it is not installed.

    Every cache key needs it, so it is read from the ``*.dist-info`` folder name
    beside the package when there is one (importlib.metadata costs ~30 ms of
    start-up), and from importlib.metadata otherwise.
    """
    import importlib.util

    module = distribution.replace("-", "_")
    spec = importlib.util.find_spec(module)
    if spec is not None and spec.origin:
        package_dir = Path(spec.origin).parent
        found = sorted(package_dir.parent.glob(f"{module}-*.dist-info"))
        if len(found) == 1:
            return found[0].name[len(module) + 1 : -len(".dist-info")]
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        raise SpeechError(f"speech engine not installed ({distribution}); run: pip install pyttsx3 espeakng-loader") from None


def _quote(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")
