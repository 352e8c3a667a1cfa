"""What a session can be asked for: options that check themselves, and what a render returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voiceguide.audio import TARGET_LUFS
from voiceguide.errors import OptionError
from voiceguide.plan.options import check_number
from voiceguide.plan.script import ScriptOptions
from voiceguide.plan.timeline import MAX_SESSION_SECONDS, Chapter, Plan
from voiceguide.routine.model import Routine
from voiceguide.routine.voice import RATE_RANGE
from voiceguide.speech.cache import ClipCache
from voiceguide.speech.engine import Engine, VoiceSettings

if TYPE_CHECKING:
    pass


DEFAULT_OUTPUT_DIR = Path("output")

# Progress: progress(stage, done, total) with one of these stages.
Progress = Callable[[str, int, int], None]
SYNTHESIS, ENCODING, VERIFY = "synthesis", "encoding", "verify"


# The ranges a session's levels may take (README, "Options"); outside them a render is silent or distorted.
LOUDNESS_RANGE = (-40.0, -5.0)  # integrated LUFS
MUSIC_VOLUME_RANGE = (-60.0, 0.0)  # dB under the voice
DUCK_RANGE = (0.0, 40.0)  # dB


@dataclass(frozen=True)
class SessionOptions:
    """Everything a user can change about a session without editing the routine.

    Checked when built: a wrong type or a value out of range raises OptionError
    (exit 2) naming the option. Paths may be given as ``str`` or ``Path``.
    """

    script: ScriptOptions = field(default_factory=ScriptOptions)
    voice: VoiceSettings = field(default_factory=VoiceSettings)  # fields set here override the routine's
    bitrate: str | None = None  # None: 64k for voice alone, 128k with music
    duration: float | None = None  # fit the session to this many seconds by scaling holds
    loudness: float | None = TARGET_LUFS  # integrated LUFS of the output; None leaves the clips as levelled one by one
    engine: str | None = None  # speech engine by name (auto, espeak, piper); None: the routine's, else auto
    fmt: str | None = None  # mp3, m4a, ogg, opus, flac or wav; None: the output's extension decides
    music: tuple[Path, ...] = ()  # background music files, played in turn and looped (default: the routine's)
    music_volume: float = -18.0  # dB the bed plays under the voice when nobody speaks
    duck: float = 12.0  # dB further down while a line is spoken
    cover: Path | None = None  # cover art (PNG or JPEG); None draws one from the title
    draw_cover: bool = True  # with no cover given, draw a simple one

    def __post_init__(self) -> None:
        _check_type("script", self.script, ScriptOptions)
        _check_type("voice", self.voice, VoiceSettings)
        if self.voice.rate is not None:
            check_number("--rate", self.voice.rate, *RATE_RANGE, whole=True, unit=" words per minute")
        if self.bitrate is not None and not isinstance(self.bitrate, str):
            raise OptionError(f"--bitrate: must be text like '96k' (got {self.bitrate!r})")
        if self.duration is not None:
            check_number("--duration", self.duration, 60.0, MAX_SESSION_SECONDS, unit=" seconds")
        if self.loudness is not None:
            check_number("--loudness", self.loudness, *LOUDNESS_RANGE, unit=" LUFS")
        if self.engine is not None and not isinstance(self.engine, str):
            raise OptionError(f"--engine: must be an engine name like 'espeak' (got {self.engine!r})")
        if self.fmt is not None:
            from voiceguide.export.formats import get_format

            if not isinstance(self.fmt, str):
                raise OptionError(f"--format: must be text like 'mp3' (got {self.fmt!r})")
            get_format(self.fmt)  # OptionError listing the formats
        if isinstance(self.music, (str, Path)) or not isinstance(self.music, (tuple, list)):
            raise OptionError(f"--music: must be a list of files (got {self.music!r})")
        object.__setattr__(self, "music", tuple(_path("--music", item) for item in self.music))
        check_number("--music-volume", self.music_volume, *MUSIC_VOLUME_RANGE, unit=" dB")
        check_number("--duck", self.duck, *DUCK_RANGE, unit=" dB")
        if self.cover is not None:
            object.__setattr__(self, "cover", _path("--cover", self.cover))
        if not isinstance(self.draw_cover, bool):
            raise OptionError(f"draw_cover: must be true or false (got {self.draw_cover!r})")


def _check_type(option: str, value: Any, kind: type) -> None:
    if not isinstance(value, kind):
        raise OptionError(f"{option}: must be a {kind.__name__} (got {type(value).__name__} {value!r})")


def as_routine(value: Routine | str | Path) -> Routine:
    """A Routine as given, or loaded from a routine file path or a built-in routine's name."""
    if isinstance(value, Routine):
        return value
    if isinstance(value, (str, Path)):
        from voiceguide.routine.builtin import resolve_routine

        return resolve_routine(value)[0]
    raise OptionError(f"routine: must be a Routine, a routine file path or a built-in name (got {type(value).__name__})")


def _arguments(options: Any, engine: Any, cache: Any) -> tuple[SessionOptions, Engine | None, ClipCache]:
    """The library call's options, engine and cache with their defaults; OptionError for a wrong kind of value.

    The engine stays None when none was given: the session chooses it (see pipeline.session.engine_for)."""
    options = SessionOptions() if options is None else options
    _check_type("options", options, SessionOptions)
    if engine is not None and not all(callable(getattr(engine, name, None)) for name in ("synthesize", "voices", "identity")):
        raise OptionError(f"engine: must be a speech engine (synthesize, voices, identity), got {type(engine).__name__}")
    cache = ClipCache() if cache is None else cache
    _check_type("cache", cache, ClipCache)
    return options, engine, cache


def _path(option: str, value: Any) -> Path:
    """A path given as ``str`` or ``Path``; OptionError for anything else or an empty name."""
    if isinstance(value, Path):
        return value
    if isinstance(value, str) and value.strip() and "\x00" not in value:
        return Path(value)
    raise OptionError(f"{option}: must be a file path (got {value!r})")


@dataclass(frozen=True)
class RenderResult:
    """What a render produced."""

    output: Path
    plan: Plan
    extras: tuple[Path, ...] = ()  # sidecars and split files, in the order written
    fmt: str = "mp3"  # the format written
    chapters: tuple[Chapter, ...] = ()  # the chapters the file holds (none in a WAV)
    engine: str = ""  # the speech engine that spoke it (auto picks one)


@dataclass(frozen=True)
class BatchItem:
    """One render of a batch: a routine and where it goes."""

    routine: Routine
    output: Path
    source: Path | None = None  # the routine's file (never overwritten; named in messages)

    def __post_init__(self) -> None:
        object.__setattr__(self, "routine", as_routine(self.routine))
        object.__setattr__(self, "output", _path("output", self.output))
