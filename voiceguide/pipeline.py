"""The whole pipeline as library calls: routine -> script -> plan -> speech -> assembly -> export.

Everything the CLI does is one call here, so voiceguide can be used without it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voiceguide.audio.loudness import TARGET_LUFS
from voiceguide.errors import OptionError, VoiceguideError
from voiceguide.export.outputs import Sidecars, safe_stem
from voiceguide.outputs import plan_batch, plan_outputs, stretch_ranges
from voiceguide.plan.blocks import CueScript, Say
from voiceguide.plan.fitting import fit_to_duration
from voiceguide.plan.options import check_number
from voiceguide.plan.script import ScriptOptions, build_script, check_script, spoken_texts
from voiceguide.plan.timeline import MAX_SESSION_SECONDS, RATE, Chapter, Plan, build_plan, to_samples
from voiceguide.routine.model import MAX_RATE, MIN_RATE, Routine
from voiceguide.speech.cache import ClipCache
from voiceguide.speech.engine import Clip, Engine, VoiceSettings
from voiceguide.speech.espeak import Pyttsx3Engine
from voiceguide.speech.synth import cached_lengths, synthesize

if TYPE_CHECKING:
    from voiceguide.export.formats import Format
    from voiceguide.export.outputs import Staging
    from voiceguide.export.tags import Tags

DEFAULT_OUTPUT_DIR = Path("output")
ESTIMATED_WPM = 175  # espeak-ng's default speaking rate

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
            check_number("--rate", self.voice.rate, MIN_RATE, MAX_RATE, whole=True, unit=" words per minute")
        if self.bitrate is not None and not isinstance(self.bitrate, str):
            raise OptionError(f"--bitrate: must be text like '96k' (got {self.bitrate!r})")
        if self.duration is not None:
            check_number("--duration", self.duration, 60.0, MAX_SESSION_SECONDS, unit=" seconds")
        if self.loudness is not None:
            check_number("--loudness", self.loudness, *LOUDNESS_RANGE, unit=" LUFS")
        if not isinstance(self.fmt, str):
            raise OptionError(f"--format: must be text like 'mp3' (got {self.fmt!r})")
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


def _arguments(options: Any, engine: Any, cache: Any) -> tuple[SessionOptions, Engine, ClipCache]:
    """The library call's options, engine and cache with their defaults; OptionError for a wrong kind of value."""
    options = SessionOptions() if options is None else options
    _check_type("options", options, SessionOptions)
    engine = Pyttsx3Engine() if engine is None else engine
    if not all(callable(getattr(engine, name, None)) for name in ("synthesize", "voices", "identity")):
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


def voice_settings(routine: Routine, override: VoiceSettings) -> VoiceSettings:
    """The routine's voice with any field the caller set taking precedence."""
    base = routine.voice
    return VoiceSettings(
        id=override.id or (None if override.language else base.id),
        language=override.language or base.language,
        rate=override.rate or base.rate,
        volume=override.volume if override.volume is not None else base.volume,
        pitch=override.pitch if override.pitch is not None else base.pitch,
    )


_OFFERED: dict[str, list[str]] = {}  # engine identity -> its voice ids and languages (listing starts a worker)


def check_voice(voice: VoiceSettings, engine: Engine) -> None:
    """OptionError, before any work, for a voice id or language the engine does not have, with the closest it has.

    An engine that cannot list its voices (an --engine-command program) decides for itself.
    """
    if not (voice.id or voice.language):
        return
    key = f"{type(engine).__name__}:{engine.identity()}"
    if key not in _OFFERED:
        offered = engine.voices()
        _OFFERED[key] = [v.id for v in offered] + sorted({lang.lower() for v in offered for lang in v.languages})
    names = _OFFERED[key]
    wanted = voice.id or voice.language or ""
    known = names if voice.id else [name.lower().rsplit("/", 1)[-1] for name in names]
    if not names or (wanted if voice.id else wanted.lower()) in known:
        return
    import difflib

    close = difflib.get_close_matches(wanted, names, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise OptionError(f"voice: {engine.name} has no voice {wanted!r}{hint} (see `voiceguide voices`)")


def estimate_length(text: str, voice: VoiceSettings, rate: int = RATE) -> int:
    """A rough length in samples for a line that has not been synthesized yet."""
    words = max(1, len(re.findall(r"\w+", text)))
    seconds = 0.15 + words * 60 / (voice.rate or ESTIMATED_WPM)
    return to_samples(seconds, rate)


def _lengths(script: CueScript, routine: Routine, options: SessionOptions, engine: Engine, cache: ClipCache,
             estimate: bool, progress: Progress | None = None,
             need_clips: bool = True) -> tuple[dict[Say, int], dict[Say, Clip]]:
    """Every line's length in samples, and the clips themselves unless estimating or ``need_clips`` is off
    (then cached lines are measured from their headers and only the rest is synthesized)."""
    from voiceguide.audio.tones import tone_clip
    from voiceguide.plan.tones import Tone, tone_samples

    heard = spoken_texts(script)
    tones = [t for t in heard if isinstance(t, Tone)]
    texts = [t for t in heard if isinstance(t, str)]
    voice = voice_settings(routine, options.voice)
    if estimate or not need_clips:  # lengths only: cached lines from their headers, tones from their recipe
        lengths: dict[Say, int] = {**_speech_lengths(texts, voice, engine, cache, estimate)}
        return lengths | {t: tone_samples(t, RATE) for t in tones}, {}
    report = (lambda done, total: progress(SYNTHESIS, done, total)) if progress else None
    clips: dict[Say, Clip] = {**synthesize(texts, voice, engine, cache, RATE, progress=report),
                              **{t: tone_clip(t, RATE) for t in tones}}
    return {t: clip.samples for t, clip in clips.items()}, clips


def session_script(routine: Routine, options: SessionOptions, engine: Engine, cache: ClipCache,
                   estimate: bool = False) -> CueScript:
    """The cue script a session speaks: with ``options.duration``, its holds fitted by exact planning.

    Fitting needs the lengths of the lines between holds only (a hold lasts its
    seconds whatever is said in it), so those are measured first; the paced
    lines of the fitted holds (the time left, say) are then part of the script.
    """
    script = build_script(routine, options.script)
    if options.duration is None:
        return script
    lengths, _ = _lengths(script, routine, options, engine, cache, estimate, need_clips=False)
    return build_script(routine, fit_to_duration(routine, options.script, options.duration, lengths))


def _speech_lengths(texts: list[str], voice: VoiceSettings, engine: Engine, cache: ClipCache,
                    estimate: bool) -> dict[str, int]:
    """Lengths without the clips: cached lines from their headers, the rest estimated or synthesized into the cache."""
    lengths = cached_lengths(texts, voice, engine, cache, RATE)
    missing = [t for t in texts if t not in lengths]
    if estimate:
        return lengths | {t: estimate_length(t, voice) for t in missing}
    if missing:
        return lengths | {t: clip.samples for t, clip in synthesize(missing, voice, engine, cache, RATE).items()}
    return lengths


def session_clips(routine: Routine, options: SessionOptions, engine: Engine, cache: ClipCache,
                  progress: Progress | None = None) -> tuple[Plan, dict[Say, Clip]]:
    """The exact plan and every clip it plays (speech synthesized or read from the cache, tones generated),
    before session levelling: what a render assembles."""
    script = session_script(routine, options, engine, cache)
    lengths, clips = _lengths(script, routine, options, engine, cache, estimate=False, progress=progress)
    return build_plan(script, lengths), clips


def plan_session(routine: Routine | str | Path, options: SessionOptions | None = None, *,
                 engine: Engine | None = None, cache: ClipCache | None = None, estimate: bool = False) -> Plan:
    """Plan a session. Exact by default (speech is synthesized into the cache to measure it);
    with ``estimate`` nothing is synthesized and uncached lines get estimated lengths.
    ``routine`` is a Routine, a routine file's path or a built-in routine's name."""
    routine = as_routine(routine)
    options, engine, cache = _arguments(options, engine, cache)
    check_voice(voice_settings(routine, options.voice), engine)
    check_script(routine, options.script)
    script = session_script(routine, options, engine, cache, estimate)
    lengths, _ = _lengths(script, routine, options, engine, cache, estimate, need_clips=False)
    return build_plan(script, lengths)


def check_routine(routine: Routine | str | Path, options: SessionOptions | None = None, *,
                  engine: Engine | None = None, cache: ClipCache | None = None) -> Plan:
    """Every check a render makes before writing, with estimated lengths for lines not yet in the cache
    and nothing synthesized: the routine loads, its voice exists, every cue and countdown fits, the limits hold.
    Returns the estimated plan; raises the error the render would."""
    return plan_session(routine, options, engine=engine, cache=cache, estimate=True)


def render_session(routine: Routine | str | Path, output: str | Path, options: SessionOptions | None = None, *,
                   engine: Engine | None = None, cache: ClipCache | None = None, verify: bool = False,
                   progress: Progress | None = None, jobs: int | None = None,
                   extras: Sidecars | None = None, source: str | Path | None = None) -> RenderResult:
    """Render a routine to an audio file at ``output`` and return its plan.

    Every file it writes (the session, ``extras``) is checked before any work
    (see plan_outputs; ``source`` is the routine's file, never to be
    overwritten) and written all or nothing: each goes to a temporary file
    beside it and all are renamed into place at the end, so an error or
    interrupt replaces none of them. New files get the umask's permissions;
    a replaced file keeps its mode.

    With ``verify`` the finished file is decoded and its duration and chapters
    checked against the plan before it replaces anything (VerifyError if not).
    ``progress(stage, done, total)`` hears about synthesis (lines), encoding
    (samples, assembled and encoded as one stream) and verification. MP3 is
    encoded on ``jobs`` cores (default: all this process may use). ``routine``
    is a Routine, a routine file's path or a built-in routine's name.
    """
    from voiceguide.audio.assemble import SessionAudio
    from voiceguide.export.encode import encode
    from voiceguide.export.outputs import Staging
    from voiceguide.export.verify import verify as verify_file
    from voiceguide.leftovers import sweep_temp_folders
    from voiceguide.outputs import check_outputs, split_targets

    routine, output = as_routine(routine), _path("output", output)
    options, engine, cache = _arguments(options, engine, cache)
    _check_call(progress, jobs, extras)
    extras, source = extras or Sidecars(), None if source is None else _path("source", source)
    if not options.music and routine.music:
        options = replace(options, music=tuple(Path(name) for name in routine.music))
    fmt = output_format(output, options, routine)
    options = replace(options, fmt=fmt.name)
    # Every file this render writes, checked before any work: a bad path fails in milliseconds.
    targets = plan_outputs(routine, output, options, extras, source)
    check_voice(voice_settings(routine, options.voice), engine)
    check_script(routine, options.script)
    sweep_temp_folders()  # what killed renders left in the temp folder (only folders whose process is gone)
    tracks = _music_tracks(options, cache)  # an unreadable music file fails before any synthesis
    cover = _cover(options, routine.name)  # likewise a bad cover image
    plan, clips = session_clips(routine, options, engine, cache, progress)
    if extras.split and targets != split_targets(output, extras, plan):
        targets = split_targets(output, extras, plan)  # the stretches came out otherwise than planned: check again
        check_outputs(targets, routine, options, source)

    def check(temp: Path) -> None:
        if progress:
            progress(VERIFY, 0, 1)
        verify_file(temp, plan.rate, plan.total, plan.chapters, fmt)
        if progress:
            progress(VERIFY, 1, 1)

    def encoded(samples: int) -> None:
        if progress:
            progress(ENCODING, samples, plan.total)

    target = options.loudness if options.loudness is not None else TARGET_LUFS
    if options.loudness is not None:
        from voiceguide.audio.loudness import level_session

        remember = cache.folder if cache.enabled else None
        if tracks:  # the bed adds loudness of its own: aim the voice so that the mix lands on target
            from voiceguide.audio.music import mix_loudness

            target += options.loudness - mix_loudness(plan, options.loudness, options.loudness + options.music_volume)
        clips = level_session(plan, clips, target, remember=remember).clips
    encoded(0)
    audio: Any = SessionAudio(plan, clips)
    if tracks:
        from voiceguide.audio.music import MixedAudio, MusicBed

        audio = MixedAudio(audio, MusicBed(plan, tracks, target + options.music_volume, options.duck))
    tags = session_tags(routine, plan)
    tags = replace(tags, cover=cover[0], cover_mime=cover[1]) if cover else tags
    # All or nothing: every file goes to a temporary name first and all are renamed at the end.
    with Staging([t.path for t in targets], journal=cache.folder) as staging:
        encode(audio, plan.rate, output, tags, plan.chapters, bitrate=options.bitrate, fmt=fmt,
               check=check if verify else None, progress=encoded, jobs=jobs, temp=staging.temp(output))
        written = _write_extras(extras, output, audio, tags, options, jobs, staging)
        staging.commit()
    return RenderResult(output, plan, written, fmt.name, tuple(plan.chapters) if fmt.holds_chapters else ())


def output_format(output: Path, options: SessionOptions, routine: Routine) -> Format:
    """The format ``output`` is written in (its extension decides; ``options.fmt`` must agree), with
    ``options.bitrate`` checked for it: OptionError (exit 2) before any work. No bit rate: 64k a channel."""
    from voiceguide.export.formats import check_bitrate, choose_format

    fmt = choose_format(output, options.fmt)
    check_bitrate(fmt, options.bitrate, 2 if options.music or routine.music else 1)  # music makes it stereo
    return fmt


def _check_call(progress: Any, jobs: Any, extras: Any) -> None:
    if progress is not None and not callable(progress):
        raise OptionError(f"progress: must be a function progress(stage, done, total) (got {progress!r})")
    if jobs is not None:
        check_number("--jobs", jobs, 1, 1024, whole=True)
    if extras is not None:
        _check_type("extras", extras, Sidecars)


def _cover(options: SessionOptions, title: str) -> tuple[bytes, str] | None:
    """The cover art's bytes and MIME type: the user's image (read once), a drawn one, or none."""
    from voiceguide.export.cover import draw_cover, read_cover

    if options.cover is not None:
        return read_cover(options.cover)
    return (draw_cover(title), "image/png") if options.draw_cover else None


def _music_tracks(options: SessionOptions, cache: ClipCache) -> list[Any]:
    """Every music file checked and measured (OptionError, exit 2, for one that cannot be read)."""
    if not options.music:
        return []
    from voiceguide.audio.music import measure_track

    return [measure_track(Path(path), cache.folder if cache.enabled else None) for path in options.music]


def _write_extras(extras: Sidecars, output: Path, audio: Any, tags: Tags, options: SessionOptions,
                  jobs: int | None, staging: Staging) -> tuple[Path, ...]:
    """Sidecars beside ``output`` and, with ``split``, one file per stretch and an M3U playlist (into ``staging``)."""
    from voiceguide.export import sidecars
    from voiceguide.export.encode import encode
    from voiceguide.export.outputs import split_path

    plan = audio.voice.plan if hasattr(audio, "voice") else audio.plan
    written: list[Path] = []
    for wanted, suffix, text in ((extras.lrc, ".lrc", sidecars.lrc), (extras.vtt, ".vtt", sidecars.vtt),
                                 (extras.json, ".json", sidecars.plan_json)):
        if wanted:
            path = output.with_suffix(suffix)
            sidecars.write_text(path, text(plan), staging.temp(path))
            written.append(path)
    if extras.split:
        entries = []
        for number, (title, start, end, chapters) in enumerate(stretch_ranges(plan), 1):
            path = split_path(output, number, title)
            part = replace(tags, title=f"{tags.title}: {title}", track=f"{number}")
            shifted = [replace(c, start=c.start - start, end=c.end - start) for c in chapters]
            encode(audio.part(start, end), plan.rate, path, part, shifted, bitrate=options.bitrate, fmt=options.fmt,
                   jobs=jobs, temp=staging.temp(path))
            entries.append((path, (end - start) / plan.rate, title))
            written.append(path)
        playlist = output.with_suffix(".m3u")
        sidecars.write_text(playlist, sidecars.m3u(entries), staging.temp(playlist))
        written.append(playlist)
    return tuple(written)


@dataclass(frozen=True)
class BatchItem:
    """One render of a batch: a routine and where it goes."""

    routine: Routine
    output: Path
    source: Path | None = None  # the routine's file (never overwritten; named in messages)

    def __post_init__(self) -> None:
        object.__setattr__(self, "routine", as_routine(self.routine))
        object.__setattr__(self, "output", _path("output", self.output))


def render_many(items: Sequence[BatchItem], options: SessionOptions | None = None, *, jobs: int | None = None,
                engine: Engine | None = None, cache: ClipCache | None = None, verify: bool = False,
                done: Callable[[BatchItem, RenderResult | VoiceguideError], None] | None = None,
                extras: Sidecars | None = None) -> list[RenderResult | VoiceguideError]:
    """Render several routines, ``jobs`` at a time (default: one per core); results in input order.

    Speech for every routine is synthesized first (each distinct line once,
    spread over the cores), then the sessions are levelled, assembled and
    encoded in parallel worker processes. A render that fails does not stop the others: its error is its
    result. ``done`` hears about each render, in order, once it has finished.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from voiceguide.host import usable_cores

    options, engine, cache = _arguments(options, engine, cache)
    _check_call(done, jobs, extras)
    for item in items:  # every name, format and bit rate checked before any work
        _check_type("items", item, BatchItem)
        output_format(item.output, options, item.routine)
        check_voice(voice_settings(item.routine, options.voice), engine)
        check_script(item.routine, options.script)
    plan_batch(items, options, extras)
    for item in items:  # warm the cache: the renders then only read clips
        _lengths(session_script(item.routine, options, engine, cache), item.routine, options, engine, cache,
                 estimate=False)
    workers = max(1, min(jobs or usable_cores(), len(items)))
    # Processes, not threads: levelling and assembly run Python code, and renders
    # sharing one interpreter would take turns on its lock. Forked workers inherit
    # the (already warm) engine and cache objects as they are.
    context = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
    results: list[RenderResult | VoiceguideError] = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        try:
            # The renders already share the cores: each encodes on its share of them.
            share = max(1, usable_cores() // workers)
            futures = [pool.submit(_render_one, item, options, engine, cache, verify, extras, share) for item in items]
            for item, future in zip(items, futures, strict=True):
                result = future.result()
                if done is not None:
                    done(item, result)
                results.append(result)
        except BaseException:
            # Ctrl-C or SIGTERM: stop the workers too (SIGTERM becomes KeyboardInterrupt in them, as
            # here, so each removes its temporary file and no render finishes behind our back).
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return results


def _render_one(item: BatchItem, options: SessionOptions, engine: Engine, cache: ClipCache, verify: bool,
                extras: Sidecars | None, jobs: int) -> RenderResult | VoiceguideError:
    """One render of a batch, in a worker process; our errors come back as results."""
    try:
        return render_session(item.routine, item.output, options, engine=engine, cache=cache, verify=verify,
                              extras=extras, jobs=jobs, source=item.source)
    except VoiceguideError as error:
        return error


def session_tags(routine: Routine, plan: Plan) -> Tags:
    """Tags for a rendered session, with a one-line summary as the comment."""
    minutes, seconds = divmod(round(plan.duration), 60)
    count = len(routine.stretches)
    summary = f"{count} stretch{'es' if count != 1 else ''}, {minutes}:{seconds:02d}"
    import datetime

    from voiceguide.export.tags import Tags

    return Tags(title=routine.name, comment=summary, year=str(datetime.date.today().year))


def default_output(base: str, folder: Path = DEFAULT_OUTPUT_DIR, fmt: str | None = None) -> Path:
    """Where a routine renders by default: output/<name>.mp3 (or the format's extension)."""
    from voiceguide.export.formats import get_format

    return folder / f"{safe_stem(base)}{get_format(fmt or 'mp3').extension}"


def preview_line(text: str, output: str | Path, voice: VoiceSettings | None = None, *, engine: Engine | None = None,
                 cache: ClipCache | None = None, loudness: float = TARGET_LUFS) -> float:
    """Speak one line (levelled like a session) to ``output``; return its length in seconds."""
    from voiceguide.audio.assemble import SessionAudio
    from voiceguide.audio.loudness import level_session
    from voiceguide.export.encode import check_writable, encode
    from voiceguide.export.formats import choose_format
    from voiceguide.export.tags import Tags
    from voiceguide.plan.blocks import Line, Place, Role, SpeechBlock
    from voiceguide.routine.text import plain_text as clean

    if not isinstance(text, str):
        raise OptionError(f"preview: the line must be text (got {type(text).__name__})")
    line = clean(text)
    if not line:
        raise OptionError("preview: nothing to say")
    output = _path("output", output)
    fmt = choose_format(output)
    voice = voice or VoiceSettings()
    _, engine, cache = _arguments(SessionOptions(voice=voice, loudness=loudness), engine, cache)  # checks them all
    check_writable(output)
    check_voice(voice, engine)
    clips = synthesize([line], voice, engine, cache, RATE)
    script = CueScript("preview", (SpeechBlock((Line(line, Role.PREVIEW),), Place("Preview")),))
    plan = build_plan(script, {line: clips[line].samples})
    levelled = level_session(plan, clips, loudness).clips
    encode(SessionAudio(plan, levelled), RATE, output, Tags(title=line), [], fmt=fmt)
    return plan.duration
