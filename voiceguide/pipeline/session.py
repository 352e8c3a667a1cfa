"""Planning a session: its voice, its script (fitted to a duration), its lines' lengths and clips."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from voiceguide.errors import OptionError
from voiceguide.pipeline.options import SYNTHESIS, Progress, SessionOptions, _arguments, as_routine
from voiceguide.plan.blocks import CueScript, Say
from voiceguide.plan.fitting import fit_to_duration
from voiceguide.plan.script import build_script, check_script, spoken_texts
from voiceguide.plan.timeline import RATE, Plan, build_plan, to_samples
from voiceguide.plan.tones import Tone
from voiceguide.routine.model import Routine
from voiceguide.speech.cache import ClipCache
from voiceguide.speech.engine import Clip, Engine, VoiceSettings, count_words
from voiceguide.speech.registry import get_engine, resolve_engine_name
from voiceguide.speech.synth import cached_lengths, synthesize

if TYPE_CHECKING:
    pass



def voice_settings(routine: Routine, override: VoiceSettings) -> VoiceSettings:
    """The routine's voice with any field the caller set taking precedence."""
    return override.over(routine.voice)


_OFFERED: dict[str, list[str]] = {}  # engine identity -> its voice ids and languages (listing starts a worker)


def engine_for(routine: Routine | None, options: SessionOptions, engine: Engine | None = None) -> Engine:
    """The engine a session speaks with: ``engine`` if given, else ``options.engine``, the routine's
    ``voice.engine``, $VOICEGUIDE_ENGINE, or ``auto``: the natural voice (piper) when its extra is installed
    and the voice asked for is one it can be (no espeak voice id, English), else espeak.

    A piper voice may be any Piper voice file: a voice id ending in ``.onnx`` is its path.
    """
    if engine is not None:
        return engine
    voice = voice_settings(routine, options.voice) if routine is not None else options.voice
    asked = options.engine or voice.engine  # the caller's choice, else the routine's
    model = voice.id if voice.id and voice.id.endswith(".onnx") else None
    name = resolve_engine_name(asked)
    if name == "piper" and asked != "piper" and not model and not _natural_can_speak(voice):
        name = resolve_engine_name("espeak")  # auto: an espeak voice id or another language stays with espeak
    return get_engine(name, model=model) if name == "piper" else get_engine(name)


def _natural_can_speak(voice: VoiceSettings) -> bool:
    """Whether ``auto`` may pick the natural voice for these settings: no espeak voice id, and English."""
    return not voice.id and (voice.language or "en").lower().startswith("en")


def check_voice(voice: VoiceSettings, engine: Engine) -> None:
    """OptionError, before any work, for a voice id or language the engine does not have, with the closest it has.

    An engine that cannot list its voices (an --engine-command program) decides for itself.
    """
    if not (voice.id or voice.language) or (voice.id or "").endswith(".onnx"):  # a voice file is its own check
        return
    names = _offered(engine)
    wanted = voice.id or voice.language or ""
    known = names if voice.id else [name.lower().rsplit("/", 1)[-1] for name in names]
    if not names or (wanted if voice.id else wanted.lower()) in known:
        return
    import difflib

    close = difflib.get_close_matches(wanted, names, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise OptionError(f"voice: {engine.name} has no voice {wanted!r}{hint} (see `voiceguide voices`)")


def _offered(engine: Engine) -> list[str]:
    """The engine's voice ids, then the languages they speak (asked once per engine: listing starts a worker)."""
    key = f"{type(engine).__name__}:{engine.identity()}"
    if key not in _OFFERED:
        offered = engine.voices()
        _OFFERED[key] = [v.id for v in offered] + sorted({lang.lower() for v in offered for lang in v.languages})
    return _OFFERED[key]


def estimate_length(text: str, voice: VoiceSettings, rate: int = RATE) -> int:
    """A rough length in samples for a line that has not been synthesized yet."""
    words = max(1, count_words(text))
    seconds = 0.15 + words * 60 / voice.wpm  # engines speak at the rate asked for (speech.pacing checks it)
    return to_samples(seconds, rate)


def _lengths(script: CueScript, routine: Routine, options: SessionOptions, engine: Engine, cache: ClipCache,
             estimate: bool, progress: Progress | None = None,
             need_clips: bool = True, analyse: bool = False) -> tuple[dict[Say, int], Mapping[Say, Clip]]:
    """Every line's length in samples, and the clips themselves unless estimating or ``need_clips`` is off
    (then cached lines are measured from their headers and only the rest is synthesized, into MeteredClips
    if ``analyse``: every clip of the script measured for levelling as the new ones are made)."""
    from voiceguide.audio.tones import tone_clip
    from voiceguide.plan.tones import tone_samples

    heard = spoken_texts(script)
    tones = [t for t in heard if isinstance(t, Tone)]
    texts = [t for t in heard if isinstance(t, str)]
    voice = voice_settings(routine, options.voice)
    report = (lambda done, total: progress(SYNTHESIS, done, total)) if progress else None
    if estimate or not need_clips:  # lengths only: cached lines from their headers, tones from their recipe
        lengths, fresh = _measured(texts, voice, engine, cache, estimate, report, tones if analyse else None)
        return lengths | {t: tone_samples(t, RATE) for t in tones}, fresh  # the clips: only what was said now
    spoken = synthesize(texts, voice, engine, cache, RATE, progress=report)
    clips: dict[Say, Clip] = {text: spoken[text] for text in spoken} | {t: tone_clip(t, RATE) for t in tones}
    return {t: clip.samples for t, clip in clips.items()}, clips


def _measured(texts: list[str], voice: VoiceSettings, engine: Engine, cache: ClipCache, estimate: bool,
              report: Callable[[int, int], None] | None,
              tones: list[Tone] | None = None) -> tuple[dict[Say, int], Mapping[Say, Clip]]:
    """Lengths of ``texts``: cached ones from their headers, the rest estimated or synthesized now (and
    then returned too, kept out of memory), as ``_lengths`` asks. With ``tones`` (the script's), what is
    synthesized goes into MeteredClips: all of the script's clips measured for levelling meanwhile."""
    found = cached_lengths(texts, voice, engine, cache, RATE)
    missing = [t for t in texts if t not in found]
    lengths: dict[Say, int] = {text: samples for text, samples in found.items()}
    if estimate:
        return lengths | {t: estimate_length(t, voice) for t in missing}, {}
    if not missing:
        return lengths, {}
    from voiceguide.audio.clips import MeteredClips, SpilledClips

    # Out of memory as each is processed, so memory stays flat however much is said for the first time.
    spill = SpilledClips(cache.folder if cache.enabled else None)
    if tones is None:
        synthesize(missing, voice, engine, cache, RATE, progress=report, into=spill)  # type: ignore[arg-type]
        return lengths | {t: spill.samples(t) for t in missing}, spill
    from voiceguide.audio.energies import analysis_order
    from voiceguide.audio.tones import tone_clip

    identity, new = engine.identity(), set(missing)

    def other(text: Say) -> Clip | None:  # a clip not being made now: a tone, or a line from the cache
        if isinstance(text, Tone):
            return tone_clip(text, RATE)
        return None if text in new else cache.get(cache.key(identity, voice, RATE, text))

    order = analysis_order([*texts, *tones])
    metered = MeteredClips(spill, order, other, RATE)
    try:
        # In the meter's order, so that each line is measured as soon as it is processed.
        synthesize([t for t in order if t in new], voice, engine, cache, RATE, progress=report,
                   into=metered)  # type: ignore[arg-type]
        metered.finish()
    finally:
        metered.close()
    return lengths | {t: spill.samples(t) for t in missing}, metered


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


def session_clips(routine: Routine, options: SessionOptions, engine: Engine, cache: ClipCache,
                  progress: Progress | None = None) -> tuple[Plan, Mapping[Say, Clip]]:
    """The exact plan and every clip it plays (speech synthesized or read from the cache, tones generated),
    before session levelling: what a render assembles.

    With the cache on, cached clips stay in the cache until assembly reads them, and lines synthesized now
    wait in an unnamed temporary file (not the cache: a concurrent render may replace an entry there, and the
    cache may be unwritable): memory stays flat however much is said.
    """
    script = session_script(routine, options, engine, cache)
    if not cache.enabled:
        lengths, clips = _lengths(script, routine, options, engine, cache, estimate=False, progress=progress)
        return build_plan(script, lengths), clips
    from voiceguide.audio.clips import CachedClips, MeteredClips
    from voiceguide.audio.tones import tone_clip

    lengths, fresh = _lengths(script, routine, options, engine, cache, estimate=False, progress=progress,
                              need_clips=False, analyse=options.loudness is not None)
    voice, identity = voice_settings(routine, options.voice), engine.identity()
    held: dict[Say, Clip] = {text: tone_clip(text, RATE) for text in lengths if isinstance(text, Tone)}
    analysis = fresh.analysis if isinstance(fresh, MeteredClips) else None
    cached = CachedClips(cache, lambda text: cache.key(identity, voice, RATE, str(text)),
                         {t: n for t, n in lengths.items() if t not in held}, RATE, held, spilled=fresh,
                         analysis=analysis)
    return build_plan(script, lengths), cached


def plan_session(routine: Routine | str | Path, options: SessionOptions | None = None, *,
                 engine: Engine | None = None, cache: ClipCache | None = None, estimate: bool = False) -> Plan:
    """Plan a session. Exact by default (speech is synthesized into the cache to measure it);
    with ``estimate`` nothing is synthesized and uncached lines get estimated lengths.
    ``routine`` is a Routine, a routine file's path or a built-in routine's name."""
    routine = as_routine(routine)
    options, engine, cache = _arguments(options, engine, cache)
    engine = engine_for(routine, options, engine)
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
