"""Rendering one session: plan, speech, levelling, assembly and export, every file written all or nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voiceguide.audio import TARGET_LUFS
from voiceguide.errors import OptionError
from voiceguide.export.outputs import Sidecars, safe_stem
from voiceguide.pipeline.options import (
    DEFAULT_OUTPUT_DIR,
    ENCODING,
    VERIFY,
    Progress,
    RenderResult,
    SessionOptions,
    _arguments,
    _check_type,
    _path,
    as_routine,
)
from voiceguide.pipeline.outputs import plan_outputs, stretch_ranges
from voiceguide.pipeline.session import check_voice, engine_for, session_clips, voice_settings
from voiceguide.plan.blocks import CueScript, Say
from voiceguide.plan.options import check_number
from voiceguide.plan.script import check_script
from voiceguide.plan.timeline import RATE, Plan, build_plan
from voiceguide.routine.model import Routine
from voiceguide.speech.cache import ClipCache
from voiceguide.speech.engine import Clip, Engine, VoiceSettings
from voiceguide.speech.synth import synthesize

if TYPE_CHECKING:
    from voiceguide.export.formats import Format
    from voiceguide.export.mp3 import PartListener
    from voiceguide.export.outputs import Staging
    from voiceguide.export.tags import Tags



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
    from voiceguide.export.encode import encode
    from voiceguide.export.outputs import Staging
    from voiceguide.export.verify import verify as verify_file
    from voiceguide.leftovers import sweep_temp_folders
    from voiceguide.pipeline.outputs import check_outputs, split_targets

    routine, output = as_routine(routine), _path("output", output)
    options, engine, cache = _arguments(options, engine, cache)
    engine = engine_for(routine, options, engine)
    _check_call(progress, jobs, extras)
    extras, source = extras or Sidecars(), None if source is None else _path("source", source)
    if not options.music and routine.music:
        options = replace(options, music=tuple(Path(name) for name in routine.music))
    # Every file this render writes, checked before any work: a bad path fails in milliseconds (and an input
    # named as the output is refused as such, before its extension is found wanting).
    targets = plan_outputs(routine, output, options, extras, source)
    fmt = output_format(output, options, routine)
    options = replace(options, fmt=fmt.name)
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

    encoded(0)
    tags = session_tags(routine, plan)
    tags = replace(tags, cover=cover[0], cover_mime=cover[1]) if cover else tags
    # All or nothing: every file goes to a temporary name first and all are renamed at the end.
    with Staging([t.path for t in targets], journal=cache.folder) as staging:
        def write(source: Any, check_file: Callable[[Path], None] | None, heard: PartListener | None = None) -> None:
            encode(source, plan.rate, output, tags, plan.chapters, bitrate=options.bitrate, fmt=fmt,
                   check=check_file, progress=encoded, jobs=jobs, temp=staging.temp(output), heard=heard)

        audio = _levelled_encode(plan, clips, tracks, options, fmt.name, cache, write, check if verify else None)
        written = _write_extras(extras, output, audio, tags, options, jobs, staging)
        staging.commit()
    return RenderResult(output, plan, written, fmt.name, tuple(plan.chapters) if fmt.holds_chapters else (),
                        engine=engine.name)


def _levelled_encode(plan: Plan, clips: Any, tracks: list[Any], options: SessionOptions, fmt: str, cache: ClipCache,
                     write: Callable[[Any, Callable[[Path], None] | None, PartListener | None], None],
                     verify: Callable[[Path], None] | None) -> Any:
    """Level the session (and mix its music), write it, and measure the written file's loudness and true peak;
    if the encoder moved them off target, level once more with the correction and write again. Returns the audio."""
    if options.loudness is None:
        audio = session_audio(plan, clips, tracks, options, None)
        write(audio, verify, None)
        return audio
    import contextlib

    from voiceguide.audio import encoded

    folder = cache.folder if cache.enabled else None
    signature, key, trim, verified = _remembered_trim(plan, clips, tracks, options, fmt, folder)
    from voiceguide.audio.loudness import speech_windows
    from voiceguide.export.formats import get_format
    from voiceguide.export.mp3 import silent_spans

    file_rate = get_format(fmt).file_rate(plan.rate)
    # Voice only: silent between the lines, so only they need measuring (a music bed plays throughout).
    windows = [] if tracks else speech_windows(plan, file_rate)
    for attempt in range(encoded.ATTEMPTS):
        audio = session_audio(plan, clips, tracks, options, trim, signature, folder)
        # An MP3 is measured while it is written (its audio frames, as they go into the file); others once written.
        streamed = fmt == "mp3" and not verified and file_rate in encoded.MPEG1_RATES
        meter = encoded.StreamCheck(windows, file_rate, plan.total, [] if tracks else silent_spans(audio, file_rate)) \
            if streamed else None

        def check(temp: Path, trim: Any = trim, last: bool = attempt == encoded.ATTEMPTS - 1,
                  meter: encoded.StreamCheck | None = meter) -> None:
            if not verified:
                found = meter.result(temp) if meter is not None else encoded.measure_file(temp, windows, file_rate)
                better = encoded.corrected(trim, found, options.loudness or 0.0)
                if better is not None and not last:
                    raise encoded.Retune(better, trim)  # nothing is written: encode again with the correction
                encoded.remember_trim(folder, key, better or trim, better is None)
            if verify is not None:
                verify(temp)

        try:
            with meter or contextlib.nullcontext():
                write(audio, check, meter)
        except encoded.Retune as retune:
            trim = retune.trim
            continue
        break
    return audio


def _remembered_trim(plan: Plan, clips: Any, tracks: list[Any], options: SessionOptions, fmt: str,
                     folder: Path | None) -> tuple[str, str, Any, bool]:
    """The session's signature, its key for the format's loudness correction, the correction (remembered, else the
    format's measured allowance) and whether a written file has confirmed it."""
    from voiceguide.audio import encoded
    from voiceguide.audio.loudness import session_signature
    from voiceguide.export.formats import check_bitrate

    signature = session_signature(plan, clips)
    # The bit rate as encoded (a default changes with the format's defaults): it moves loudness and peaks.
    kbps = check_bitrate(fmt, options.bitrate, 2 if tracks else 1)
    key = encoded.trim_key(signature, fmt, kbps, options.loudness,
                           [(str(t.path), t.loudness) for t in tracks], options.music_volume, options.duck)
    known = encoded.recall_trim(folder, key)
    trim, verified = known or (encoded.ENCODER_TRIM.get(fmt, encoded.ENCODER_TRIM["wav"]), False)
    return signature, key, trim, verified


def warm_audio(plan: Plan, clips: Any, options: SessionOptions, cache: ClipCache, fmt: str = "mp3") -> Any:
    """The PCM source a warm render of a voice-only session encodes: levelled with the remembered correction."""
    folder = cache.folder if cache.enabled else None
    signature, _, trim, _ = _remembered_trim(plan, clips, [], options, fmt, folder)
    return session_audio(plan, clips, [], options, trim, signature, folder)


def session_audio(plan: Plan, clips: Any, tracks: list[Any], options: SessionOptions, trim: Any,
                  signature: str | None = None, folder: Path | None = None) -> Any:
    """The session's PCM source as a render encodes it: levelled to ``options.loudness`` plus the format's
    ``trim`` (None: not levelled as a session), with the music bed mixed in."""
    from voiceguide.audio.assemble import SessionAudio

    if trim is None or options.loudness is None:
        audio: Any = SessionAudio(plan, clips)
        if tracks:
            from voiceguide.audio.music import MixedAudio, MusicBed

            audio = MixedAudio(audio, MusicBed(plan, tracks, TARGET_LUFS + options.music_volume, options.duck))
        return audio
    from voiceguide.audio.loudness import level_session

    target = options.loudness + trim.gain_db
    if not tracks:
        return SessionAudio(plan, clips, level_session(plan, clips, target, folder, trim.ceiling_dbfs, signature))
    from voiceguide.audio.music import STEREO_DB, MixedAudio, MusicBed, mix_loudness

    # The bed adds loudness of its own: aim the voice so that the mix lands on target. The voice is
    # levelled alone (mono) and then played on both channels, which a stereo measurement hears 3 dB louder.
    voice = target + target - mix_loudness(plan, target, target + options.music_volume)
    levels = level_session(plan, clips, voice - STEREO_DB, folder, trim.ceiling_dbfs, signature)
    return MixedAudio(SessionAudio(plan, clips, levels), MusicBed(plan, tracks, voice + options.music_volume, options.duck))


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
    session, engine, cache = _arguments(SessionOptions(voice=voice, loudness=loudness), engine, cache)  # checks them
    engine = engine_for(None, session, engine)
    check_writable(output)
    check_voice(voice, engine)
    clips = synthesize([line], voice, engine, cache, RATE)
    script = CueScript("preview", (SpeechBlock((Line(line, Role.PREVIEW),), Place("Preview")),))
    plan = build_plan(script, {line: clips[line].samples})
    said: dict[Say, Clip] = {line: clips[line]}
    encode(SessionAudio(plan, said, level_session(plan, said, loudness)), RATE, output, Tags(title=line), [], fmt=fmt)
    return plan.duration
