"""The whole pipeline as library calls: routine -> script -> plan -> speech -> assembly -> export.

Everything the CLI does is one call here, so voiceguide can be used without it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voiceguide.errors import OptionError, PlanError, VoiceguideError
from voiceguide.plan.script import ScriptOptions, build_script, spoken_texts
from voiceguide.plan.timeline import MAX_SESSION_SECONDS, RATE, Chapter, Plan, build_plan, to_samples
from voiceguide.routine.model import Routine
from voiceguide.speech.cache import ClipCache
from voiceguide.speech.engine import Clip, Engine, VoiceSettings
from voiceguide.speech.espeak import Pyttsx3Engine
from voiceguide.speech.synth import cached_lengths, synthesize

if TYPE_CHECKING:
    from voiceguide.export.tags import Tags

DEFAULT_OUTPUT_DIR = Path("output")
ESTIMATED_WPM = 175  # espeak-ng's default speaking rate
HOLD_FLOOR = 10.0  # --duration never scales a hold below this many seconds

# Progress: progress(stage, done, total) with one of these stages.
Progress = Callable[[str, int, int], None]
SYNTHESIS, ENCODING, VERIFY = "synthesis", "encoding", "verify"


@dataclass(frozen=True)
class SessionOptions:
    """Everything a user can change about a session without editing the routine."""

    script: ScriptOptions = field(default_factory=ScriptOptions)
    voice: VoiceSettings = field(default_factory=VoiceSettings)  # fields set here override the routine's
    bitrate: str | None = None  # None: 64k for voice alone, 128k with music
    duration: float | None = None  # fit the session to this many seconds by scaling holds
    loudness: float | None = -16.0  # integrated LUFS of the output; None leaves the clips as levelled one by one
    fmt: str = "mp3"
    music: tuple[Path, ...] = ()  # background music files, played in turn and looped (default: the routine's)
    music_volume: float = -18.0  # dB the bed plays under the voice when nobody speaks
    duck: float = 12.0  # dB further down while a line is spoken
    cover: Path | None = None  # cover art (PNG or JPEG); None draws one from the title
    draw_cover: bool = True  # with no cover given, draw a simple one


@dataclass(frozen=True)
class Sidecars:
    """Extra files a render writes beside the session."""

    lrc: bool = False  # NAME.lrc: every spoken line at its time
    vtt: bool = False  # NAME.vtt: the same as WebVTT captions
    json: bool = False  # NAME.json: the plan
    split: bool = False  # NAME-01-<stretch>.EXT ... plus NAME.m3u


@dataclass(frozen=True)
class RenderResult:
    """What a render produced."""

    output: Path
    plan: Plan
    extras: tuple[Path, ...] = ()  # sidecars and split files, in the order written


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


def estimate_length(text: str, voice: VoiceSettings, rate: int = RATE) -> int:
    """A rough length in samples for a line that has not been synthesized yet."""
    words = max(1, len(re.findall(r"\w+", text)))
    seconds = 0.15 + words * 60 / (voice.rate or ESTIMATED_WPM)
    return to_samples(seconds, rate)


def _lengths(routine: Routine, options: SessionOptions, engine: Engine, cache: ClipCache,
             estimate: bool, progress: Progress | None = None,
             need_clips: bool = True) -> tuple[dict[str, int], dict[str, Clip]]:
    """Every line's length in samples, and the clips themselves unless estimating or ``need_clips`` is off
    (then cached lines are measured from their headers and only the rest is synthesized)."""
    from voiceguide.audio.tones import tone_clip
    from voiceguide.plan.tones import is_tone, tone_samples

    texts = spoken_texts(build_script(routine, options.script))
    tones = [t for t in texts if is_tone(t)]
    texts = [t for t in texts if not is_tone(t)]
    voice = voice_settings(routine, options.voice)
    report = (lambda done, total: progress(SYNTHESIS, done, total)) if progress else None
    if estimate or not need_clips:  # lengths only: cached lines from their headers, tones from their recipe
        lengths = cached_lengths(texts, voice, engine, cache, RATE)
        missing = [t for t in texts if t not in lengths]
        if estimate:
            lengths |= {t: estimate_length(t, voice) for t in missing}
        fresh = synthesize(missing, voice, engine, cache, RATE, progress=report) if missing and not estimate else {}
        lengths |= {t: clip.samples for t, clip in fresh.items()}
        return lengths | {t: tone_samples(t, RATE) for t in tones}, fresh  # only what was synthesized now
    clips = synthesize(texts, voice, engine, cache, RATE, progress=report) | {t: tone_clip(t, RATE) for t in tones}
    return {t: clip.samples for t, clip in clips.items()}, clips


def fit_to_duration(routine: Routine, options: ScriptOptions, target: float, lengths: dict[str, int]) -> ScriptOptions:
    """Scale every hold (never below HOLD_FLOOR seconds) so the session lasts ``target`` seconds."""
    if not 60 <= target <= MAX_SESSION_SECONDS:
        raise OptionError(f"--duration: must be between 1 minute and {MAX_SESSION_SECONDS // 3600} hours")

    def total(scale: float) -> float | None:
        trial = replace(options, hold_scale=scale, hold_floor=HOLD_FLOOR)
        try:
            return build_plan(build_script(routine, trial), lengths).duration
        except PlanError:
            return None  # cues no longer fit: too short

    low, high = 0.001, 100.0
    longest = total(high)
    if longest is None or longest < target:
        raise OptionError(f"--duration: {_clock(target)} is longer than this routine can reasonably last "
                          f"(at most {_clock(longest or 0)} with holds scaled 100x)")
    shortest = total(low)
    if shortest is None:
        # Holds at the floor are too short for some cue: find the smallest scale where all fit.
        for _ in range(50):
            mid = (low + high) / 2
            low, high = (mid, high) if total(mid) is None else (low, mid)
        low, high = high, 100.0
        shortest = total(low)
    shortest = shortest or 0.0
    if shortest > target:
        raise OptionError(f"--duration: {_clock(target)} is too short; this routine needs at least "
                          f"{_clock(shortest)} (holds never go below {HOLD_FLOOR:g} s and every cue must still fit)")
    for _ in range(60):
        mid = (low + high) / 2
        length = total(mid)
        if length is not None and length > target:
            high = mid
        else:
            low = mid
    return replace(options, hold_scale=round(high, 6), hold_floor=HOLD_FLOOR)


def _clock(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}:{rest:02d}"


def _script_options(routine: Routine, options: SessionOptions, lengths: dict[str, int]) -> ScriptOptions:
    if options.duration is None:
        return options.script
    return fit_to_duration(routine, options.script, options.duration, lengths)


def plan_session(routine: Routine, options: SessionOptions | None = None, *, engine: Engine | None = None,
                 cache: ClipCache | None = None, estimate: bool = False) -> Plan:
    """Plan a session. Exact by default (speech is synthesized into the cache to measure it);
    with ``estimate`` nothing is synthesized and uncached lines get estimated lengths."""
    options = options or SessionOptions()
    lengths, _ = _lengths(routine, options, engine or Pyttsx3Engine(), cache or ClipCache(), estimate, need_clips=False)
    return build_plan(build_script(routine, _script_options(routine, options, lengths)), lengths)


def render_session(routine: Routine, output: Path, options: SessionOptions | None = None, *,
                   engine: Engine | None = None, cache: ClipCache | None = None, verify: bool = False,
                   progress: Progress | None = None, jobs: int | None = None,
                   extras: Sidecars | None = None) -> RenderResult:
    """Render a routine to an audio file at ``output`` (written atomically) and return its plan.

    With ``verify`` the finished file is decoded and its duration and chapters
    checked against the plan before it replaces anything (VerifyError if not).
    ``progress(stage, done, total)`` hears about synthesis (lines), encoding
    (samples, assembled and encoded as one stream) and verification. MP3 is
    encoded on ``jobs`` cores (default: all this process may use).
    """
    from voiceguide.export.encode import check_writable, encode
    from voiceguide.export.formats import format_for
    from voiceguide.export.verify import verify as verify_file

    options = options or SessionOptions()
    check_writable(output)  # before any work: a bad path should fail in milliseconds
    cache = cache or ClipCache()
    if not options.music and routine.music:
        options = replace(options, music=tuple(Path(name) for name in routine.music))
    options = replace(options, bitrate=options.bitrate or ("128k" if options.music else "64k"))
    tracks = _music_tracks(options, cache)  # an unreadable music file fails before any synthesis
    cover = _cover(options, routine.name)  # likewise a bad cover image
    engine = engine or Pyttsx3Engine()
    lengths, clips = _session_clips(routine, options, engine, cache, progress)
    plan = build_plan(build_script(routine, _script_options(routine, options, lengths)), lengths)

    def check(temp: Path) -> None:
        if progress:
            progress(VERIFY, 0, 1)
        verify_file(temp, plan.rate, plan.total, plan.chapters)
        if progress:
            progress(VERIFY, 1, 1)

    def encoded(samples: int) -> None:
        if progress:
            progress(ENCODING, samples, plan.total)

    tags = session_tags(routine, plan)
    tags = replace(tags, cover=cover[0], cover_mime=cover[1]) if cover else tags
    fmt = format_for(output, options.fmt)
    audio = _levelled_encode(plan, clips, tracks, options, fmt, cache,
                             lambda source, check_file: encode(source, plan.rate, output, tags, plan.chapters,
                                                               bitrate=options.bitrate or "64k", fmt=fmt,
                                                               check=check_file, progress=encoded, jobs=jobs),
                             check if verify else None)
    return RenderResult(output, plan, _write_extras(extras or Sidecars(), output, audio, tags, options, jobs))


def _session_clips(routine: Routine, options: SessionOptions, engine: Engine, cache: ClipCache,
                   progress: Progress | None) -> tuple[dict[str, int], Any]:
    """Every line's length and its clip; with the cache on, cached clips stay in the cache until assembly reads
    them (flat memory however much is said on a warm render)."""
    if not cache.enabled:
        return _lengths(routine, options, engine, cache, estimate=False, progress=progress)
    from voiceguide.audio.clips import CachedClips
    from voiceguide.audio.tones import tone_clip
    from voiceguide.plan.tones import is_tone

    lengths, fresh = _lengths(routine, options, engine, cache, estimate=False, progress=progress, need_clips=False)
    voice, identity = voice_settings(routine, options.voice), engine.identity()
    # Lines synthesized by this render stay in memory: a concurrent render of the same lines may replace
    # them in the cache with a take a few samples longer (espeak is not bit-exact), and the cache may be
    # unwritable. Lines that were already cached are read when assembly needs them.
    held = {text: tone_clip(text, RATE) for text in lengths if is_tone(text)} | fresh
    return lengths, CachedClips(cache, lambda text: cache.key(identity, voice, RATE, text),
                                {t: n for t, n in lengths.items() if t not in held}, RATE, held)


def _levelled_encode(plan: Plan, clips: Any, tracks: list[Any], options: SessionOptions, fmt: str, cache: ClipCache,
                     write: Callable[[Any, Callable[[Path], None] | None], None],
                     verify: Callable[[Path], None] | None) -> Any:
    """Level the session (and mix its music), write it, and measure the written file's loudness and true peak;
    if the encoder moved them off target, level once more with the correction and write again. Returns the audio."""
    from voiceguide.audio.assemble import SessionAudio

    if options.loudness is None:
        audio: Any = SessionAudio(plan, clips)
        if tracks:
            from voiceguide.audio.music import MixedAudio, MusicBed

            audio = MixedAudio(audio, MusicBed(plan, tracks, -16.0 + options.music_volume, options.duck))
        write(audio, verify)
        return audio
    from voiceguide.audio import encoded
    from voiceguide.audio.loudness import session_signature

    folder = cache.folder if cache.enabled else None
    signature = session_signature(plan, clips)
    key = encoded.trim_key(signature, fmt, options.bitrate, options.loudness, [(str(t.path), t.loudness) for t in tracks],
                   options.music_volume, options.duck)
    known = encoded.recall_trim(folder, key)
    trim, verified = known or (encoded.ENCODER_TRIM.get(fmt, encoded.ENCODER_TRIM["wav"]), False)
    for attempt in range(encoded.ATTEMPTS):
        audio = _levelled_audio(plan, clips, tracks, options, trim, signature, folder)

        def check(temp: Path, trim: Any = trim, last: bool = attempt == encoded.ATTEMPTS - 1) -> None:
            if not verified:
                better = encoded.corrected(trim, encoded.measure_file(temp), options.loudness or 0.0)
                if better is not None and not last:
                    raise encoded.Retune(better, trim)  # nothing is written: encode again with the correction
                encoded.remember_trim(folder, key, better or trim, better is None)
            if verify is not None:
                verify(temp)

        try:
            write(audio, check)
        except encoded.Retune as retune:
            trim = retune.trim
            continue
        break
    return audio


def _levelled_audio(plan: Plan, clips: Any, tracks: list[Any], options: SessionOptions, trim: Any,
                    signature: str, folder: Path | None) -> Any:
    """The session levelled to ``options.loudness`` plus the format's trim, with the music bed mixed in."""
    from voiceguide.audio.assemble import SessionAudio
    from voiceguide.audio.loudness import level_session

    target = (options.loudness or 0.0) + trim.gain_db
    if not tracks:
        return SessionAudio(plan, clips, level_session(plan, clips, target, folder, trim.ceiling_dbfs, signature))
    from voiceguide.audio.music import STEREO_DB, MixedAudio, MusicBed, mix_loudness

    # The bed adds loudness of its own: aim the voice so that the mix lands on target. The voice is
    # levelled alone (mono) and then played on both channels, which a stereo measurement hears 3 dB louder.
    voice = target + target - mix_loudness(plan, target, target + options.music_volume)
    levels = level_session(plan, clips, voice - STEREO_DB, folder, trim.ceiling_dbfs, signature)
    return MixedAudio(SessionAudio(plan, clips, levels), MusicBed(plan, tracks, voice + options.music_volume, options.duck))


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
                  jobs: int | None) -> tuple[Path, ...]:
    """Sidecars beside ``output`` and, with ``split``, one file per stretch and an M3U playlist."""
    from voiceguide.export import sidecars
    from voiceguide.export.encode import encode

    plan = audio.voice.plan if hasattr(audio, "voice") else audio.plan
    written: list[Path] = []
    for wanted, suffix, text in ((extras.lrc, ".lrc", sidecars.lrc), (extras.vtt, ".vtt", sidecars.vtt),
                                 (extras.json, ".json", sidecars.plan_json)):
        if wanted:
            path = output.with_suffix(suffix)
            sidecars.write_text(path, text(plan))
            written.append(path)
    if extras.split:
        entries = []
        for number, (title, start, end, chapters) in enumerate(_stretch_ranges(plan), 1):
            path = output.with_name(f"{output.stem}-{number:02d}-{safe_stem(title)}{output.suffix}")
            part = replace(tags, title=f"{tags.title}: {title}", track=f"{number}")
            shifted = [replace(c, start=c.start - start, end=c.end - start) for c in chapters]
            encode(audio.part(start, end), plan.rate, path, part, shifted, bitrate=options.bitrate, fmt=options.fmt,
                   jobs=jobs)
            entries.append((path, (end - start) / plan.rate, title))
            written.append(path)
        playlist = output.with_suffix(".m3u")
        sidecars.write_text(playlist, sidecars.m3u(entries))
        written.append(playlist)
    return tuple(written)


def _stretch_ranges(plan: Plan) -> list[tuple[str, int, int, list[Chapter]]]:
    """(title, start, end, chapters) per stretch; the introduction and closing get their own."""
    ranges: list[tuple[str, int, int, list[Chapter]]] = []
    for chapter in plan.chapters:
        event = next((e for e in plan.events if chapter.start <= e.start < chapter.end), None)
        title = (event.place.stretch if event and event.place.stretch else chapter.title) or chapter.title
        if ranges and ranges[-1][0] == title:
            name, start, _, chapters = ranges[-1]
            ranges[-1] = (name, start, chapter.end, [*chapters, chapter])
        else:
            ranges.append((title, chapter.start, chapter.end, [chapter]))
    return ranges


@dataclass(frozen=True)
class BatchItem:
    """One render of a batch: a routine and where it goes."""

    routine: Routine
    output: Path


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

    from voiceguide.export.encode import check_writable
    from voiceguide.host import usable_cores

    options = options or SessionOptions()
    engine = engine or Pyttsx3Engine()
    cache = cache or ClipCache()
    for item in items:
        check_writable(item.output)
    for item in items:  # warm the cache: the renders then only read clips
        _lengths(item.routine, options, engine, cache, estimate=False)
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
                              extras=extras, jobs=jobs)
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


def safe_stem(name: str) -> str:
    """A portable file name stem from a routine or file name: no paths, no hidden files."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-_")[:80].rstrip(".-_").lower()
    if stem.split(".")[0] in _RESERVED_NAMES:  # names Windows cannot create, whatever the extension
        stem = f"{stem}-session"
    return stem or "session"


_RESERVED_NAMES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


def default_output(base: str, folder: Path = DEFAULT_OUTPUT_DIR, fmt: str = "mp3") -> Path:
    """Where a routine renders by default: output/<name>.mp3 (or the format's extension)."""
    return folder / f"{safe_stem(base)}.{fmt}"


def preview_line(text: str, output: Path, voice: VoiceSettings | None = None, *, engine: Engine | None = None,
                 cache: ClipCache | None = None, loudness: float = -16.0) -> float:
    """Speak one line (levelled like a session) to ``output``; return its length in seconds."""
    from voiceguide.audio.assemble import SessionAudio
    from voiceguide.audio.loudness import level_session
    from voiceguide.export.encode import check_writable, encode
    from voiceguide.export.formats import format_for
    from voiceguide.export.tags import Tags
    from voiceguide.plan.script import CueScript, Line, Place, SpeechBlock
    from voiceguide.plan.script import plain_text as clean

    line = clean(text)
    if not line:
        raise OptionError("preview: nothing to say")
    check_writable(output)
    voice = voice or VoiceSettings()
    clips = synthesize([line], voice, engine or Pyttsx3Engine(), cache or ClipCache(), RATE)
    script = CueScript("preview", (SpeechBlock((Line(line, "preview"),), Place("Preview")),))
    plan = build_plan(script, {line: clips[line].samples})
    levels = level_session(plan, clips, loudness)
    encode(SessionAudio(plan, clips, levels), RATE, output, Tags(title=line), [], fmt=format_for(output, None))
    return plan.duration
