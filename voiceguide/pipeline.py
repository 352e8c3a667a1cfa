"""The whole pipeline as library calls: routine -> script -> plan -> speech -> assembly -> export.

Everything the CLI does is one call here, so voiceguide can be used without it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from voiceguide.routine import Routine
from voiceguide.script import CueScript, ScriptOptions, build_script, spoken_texts
from voiceguide.speech import ClipCache, Engine, Pyttsx3Engine, VoiceSettings, cached_lengths, synthesize
from voiceguide.timeline import RATE, Plan, build_plan, to_samples

if TYPE_CHECKING:
    from voiceguide.export import Tags

DEFAULT_OUTPUT_DIR = Path("output")
ESTIMATED_WPM = 175  # espeak-ng's default speaking rate


@dataclass(frozen=True)
class SessionOptions:
    """Everything a user can change about a session without editing the routine."""

    script: ScriptOptions = field(default_factory=ScriptOptions)
    voice: VoiceSettings = field(default_factory=VoiceSettings)  # fields set here override the routine's
    bitrate: str = "64k"


@dataclass(frozen=True)
class RenderResult:
    """What a render produced."""

    output: Path
    plan: Plan


def voice_settings(routine: Routine, override: VoiceSettings) -> VoiceSettings:
    """The routine's voice with any field the caller set taking precedence."""
    base = routine.voice
    return VoiceSettings(
        id=override.id or (None if override.language else base.id),
        language=override.language or base.language,
        rate=override.rate or base.rate,
        volume=override.volume if override.volume is not None else base.volume,
    )


def estimate_length(text: str, voice: VoiceSettings, rate: int = RATE) -> int:
    """A rough length in samples for a line that has not been synthesized yet."""
    words = max(1, len(re.findall(r"\w+", text)))
    seconds = 0.15 + words * 60 / (voice.rate or ESTIMATED_WPM)
    return to_samples(seconds, rate)


def plan_session(routine: Routine, options: SessionOptions | None = None, *, engine: Engine | None = None,
                 cache: ClipCache | None = None, estimate: bool = False) -> Plan:
    """Plan a session. Exact by default (speech is synthesized into the cache to measure it);
    with ``estimate`` nothing is synthesized and uncached lines get estimated lengths."""
    options = options or SessionOptions()
    script = build_script(routine, options.script)
    voice = voice_settings(routine, options.voice)
    engine = engine or Pyttsx3Engine()
    cache = cache or ClipCache()
    texts = spoken_texts(script)
    if estimate:
        known = cached_lengths(texts, voice, engine, cache, RATE)
        lengths = {t: known.get(t) or estimate_length(t, voice) for t in texts}
    else:
        lengths = {t: clip.samples for t, clip in synthesize(texts, voice, engine, cache, RATE).items()}
    return build_plan(script, lengths)


def render_session(routine: Routine, output: Path, options: SessionOptions | None = None, *,
                   engine: Engine | None = None, cache: ClipCache | None = None) -> RenderResult:
    """Render a routine to an audio file at ``output`` (written atomically) and return its plan."""
    from voiceguide.assemble import pcm_chunks
    from voiceguide.export import check_writable, encode

    options = options or SessionOptions()
    check_writable(output)  # before any work: a bad path should fail in milliseconds
    script: CueScript = build_script(routine, options.script)
    voice = voice_settings(routine, options.voice)
    clips = synthesize(spoken_texts(script), voice, engine or Pyttsx3Engine(), cache or ClipCache(), RATE)
    plan = build_plan(script, {text: clip.samples for text, clip in clips.items()})
    encode(pcm_chunks(plan, clips), plan.rate, output, session_tags(routine, plan), plan.chapters,
           bitrate=options.bitrate)
    return RenderResult(output, plan)


def session_tags(routine: Routine, plan: Plan) -> Tags:
    """Tags for a rendered session, with a one-line summary as the comment."""
    minutes, seconds = divmod(round(plan.duration), 60)
    count = len(routine.stretches)
    summary = f"{count} stretch{'es' if count != 1 else ''}, {minutes}:{seconds:02d}"
    from voiceguide.export import Tags  # export pulls in nothing heavy, but keep `plan` lean

    return Tags(title=routine.name, comment=summary)


def safe_stem(name: str) -> str:
    """A portable file name stem from a routine or file name: no paths, no hidden files."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-_")[:80]
    return stem.lower() or "session"


def default_output(base: str) -> Path:
    """Where a routine renders by default: output/<name>.mp3."""
    return DEFAULT_OUTPUT_DIR / f"{safe_stem(base)}.mp3"
