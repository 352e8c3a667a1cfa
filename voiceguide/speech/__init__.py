"""Stage 3, speech: every distinct line synthesized once, processed and cached.

``engine`` defines what an engine offers; ``espeak`` (the default, pyttsx3),
``command`` (any TTS program) and the worker protocol in ``worker`` implement it;
``clip`` trims and levels what an engine wrote; ``cache`` stores processed clips
by content; ``synth`` is the stage itself.
"""

from voiceguide.speech.cache import ClipCache
from voiceguide.speech.command import CommandEngine
from voiceguide.speech.engine import Clip, Engine, VoiceInfo, VoiceSettings
from voiceguide.speech.espeak import Pyttsx3Engine
from voiceguide.speech.synth import cached_lengths, synthesize

__all__ = ["Clip", "ClipCache", "CommandEngine", "Engine", "Pyttsx3Engine", "VoiceInfo", "VoiceSettings",
           "cached_lengths", "synthesize"]
