"""What every speech engine offers: voice settings, clips and the Engine protocol."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from voiceguide.errors import SpeechError

# The one voice-settings type is the routine's (it is validated there); engines take it as it is.
from voiceguide.routine.voice import DEFAULT_WPM as DEFAULT_WPM
from voiceguide.routine.voice import VoiceSettings as VoiceSettings
from voiceguide.speech.words import PACE_TOLERANCE as PACE_TOLERANCE
from voiceguide.speech.words import PACED_MIN_WORDS as PACED_MIN_WORDS
from voiceguide.speech.words import count_words as count_words

CLIP_FORMAT = 2  # bump when synthesis or clip processing changes, so old cache entries are not reused
SYNTH_TIMEOUT = 30.0  # seconds one line may take (or a worker may take to start) before the engine is assumed hung


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
    is treated as an engine fault (voiceguide.speech.pacing). One that can shape
    its own lines offers ``synthesize_shaped(texts, voice, folder, rate, on_done)``
    too, whose WAVs are the clips themselves (speech.shaping at ``rate``, exactly
    what process_clip makes of its plain WAVs): the synthesis stage then uses it.
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


def installed_version(distribution: str, package: str | None = None) -> str:
    """A distribution's installed version; SpeechError with the fix if it is not installed.

    Every cache key needs it, so it is read from the ``*.dist-info`` folder name
    beside the package it installs (``package``, by default the distribution's own
    name: ``piper-tts`` installs ``piper``) when there is one (importlib.metadata
    costs ~30 ms of start-up), and from importlib.metadata otherwise.
    """
    import importlib.util

    module = distribution.replace("-", "_")
    spec = importlib.util.find_spec(package or module)
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
