"""Stage 3, speech: every distinct line synthesized once, processed and cached.

``engine`` defines what an engine offers (VoiceSettings, Clip, the Engine
protocol); ``registry`` names every engine (``get_engine``); ``espeak`` (the
default) and ``command`` (any TTS program) implement it, the first over the
worker protocol in ``worker``; ``clip`` trims and levels what an engine wrote;
``pacing`` rejects clips whose length is implausible; ``cache`` stores processed
clips by content; ``synth`` is the stage itself.
"""

from voiceguide.speech.cache import ClipCache
from voiceguide.speech.command import CommandEngine
from voiceguide.speech.engine import Clip, Engine, VoiceInfo, VoiceSettings
from voiceguide.speech.espeak import EspeakEngine, Pyttsx3Engine
from voiceguide.speech.registry import check_engine, engine_names, get_engine
from voiceguide.speech.synth import cached_lengths, synthesize

__all__ = ["Clip", "ClipCache", "CommandEngine", "Engine", "EspeakEngine", "Pyttsx3Engine", "VoiceInfo",
           "VoiceSettings", "cached_lengths", "check_engine", "engine_names", "get_engine", "synthesize"]
