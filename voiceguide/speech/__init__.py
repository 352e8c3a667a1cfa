"""Stage 3, speech: every distinct line synthesized once, processed and cached.

``engine`` defines what an engine offers (VoiceSettings, Clip, the Engine
protocol); ``registry`` names every engine (``get_engine``); ``espeak`` (the
default) and ``command`` (any TTS program) implement it, the first over the
worker protocol in ``worker``; ``clip`` trims and levels what an engine wrote;
``pacing`` rejects clips whose length is implausible; ``cache`` stores processed
clips by content; ``synth`` is the stage itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from voiceguide._lazy import lazy_exports

if TYPE_CHECKING:  # what the lazy names below are, for type checkers and editors
    from voiceguide.speech.cache import ClipCache
    from voiceguide.speech.command import CommandEngine
    from voiceguide.speech.engine import Clip, Engine, VoiceInfo, VoiceSettings
    from voiceguide.speech.espeak import EspeakEngine, Pyttsx3Engine
    from voiceguide.speech.registry import check_engine, engine_names, get_engine
    from voiceguide.speech.synth import cached_lengths, synthesize

# Names are imported on first use (PEP 562): a speech worker (``python -m voiceguide.speech.espeak_worker``)
# runs this file first, and importing the stage here cost every worker and every forked line 11 MB.
_EXPORTS = {
    "ClipCache": "cache", "CommandEngine": "command", "Clip": "engine", "Engine": "engine", "VoiceInfo": "engine",
    "VoiceSettings": "engine", "EspeakEngine": "espeak", "Pyttsx3Engine": "espeak", "check_engine": "registry",
    "engine_names": "registry", "get_engine": "registry", "cached_lengths": "synth", "synthesize": "synth",
}


__getattr__ = lazy_exports(__name__, _EXPORTS)


__all__ = ["Clip", "ClipCache", "CommandEngine", "Engine", "EspeakEngine", "Pyttsx3Engine", "VoiceInfo",
           "VoiceSettings", "cached_lengths", "check_engine", "engine_names", "get_engine", "synthesize"]
