"""A speech worker process: libespeak-ng (shipped by espeakng-loader) through pyttsx3's bindings.

Run as ``python -m voiceguide.speech.espeak_worker``; it reads one JSON request per
line on stdin and answers one JSON line. It runs in its own process so the
parent can enforce a timeout and kill it; a crash inside the library costs one
worker, not the render.

Requests: ``{"op": "voices"}`` and
``{"op": "say", "text": ..., "path": ..., "voice": {...}}`` where ``voice`` holds
the *espeak* values (``rate`` is espeak's rate parameter, already calibrated by
the parent; see voiceguide.speech.espeak).

Why not ``pyttsx3.init()`` and ``save_to_file``/``runAndWait``: pyttsx3's espeak
driver starts libespeak-ng in its asynchronous mode (AUDIO_OUTPUT_RETRIEVAL),
where ``espeak_SetParameter`` and ``espeak_Synth`` are queued to espeak's own
thread. Its ``runAndWait`` ends by calling ``endLoop`` -> ``driver.stop()``, which
calls ``espeak_Cancel()`` whenever espeak still has queued work: that throws away
the queued rate change (the line comes out at the default rate, about 1 cold run
in 30) and leaves the driver's ``_stopping`` flag set, so the *next* utterance is
cancelled before its WAV is written and the worker waits for it until the timeout
(the 20-s stalls). The first ``runAndWait`` also returns before its line is
spoken. Here libespeak-ng runs in its SYNCHRONOUS mode through the same ctypes
bindings pyttsx3 ships (``pyttsx3.drivers._espeak``), its voices listed as
``EspeakDriver.getProperty("voices")`` lists them (``espeak_voices``): every setting is applied before
``espeak_Synth`` starts, ``espeak_Synth`` returns when the line is complete, and
every property is set again for every line, in a child forked from a worker that
has never spoken (see ``Speaker.say``). No thread, no queue, no callback to wait
for: the same text and settings give the same samples on every run. Asked to
(``shape_rate`` in the voice), the child also shapes the line into its clip
(voiceguide.speech.shaping) while the other worker speaks.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import wave
from array import array
from pathlib import Path
from typing import Any, NamedTuple

from voiceguide.host import load_audioop
from voiceguide.speech.shaping import shape_speech
from voiceguide.speech.words import PACE_TOLERANCE, PACED_MIN_WORDS, count_words

# espeak's own defaults, set explicitly for every line so no setting leaks between lines.
DEFAULT_RATE = 175
DEFAULT_VOLUME = 1.0
DEFAULT_PITCH = 50
MIN_RATE, MAX_RATE = 80, 450  # espeak-ng clamps its rate parameter to these
GAP_UNIT_SECONDS = 0.035  # what one WORDGAP unit adds per word gap at rate 80 (measured: 32-39 ms)
WORDGAP = 7  # espeakWORDGAP: extra pause between words, in 10 ms units (not in pyttsx3's bindings)
_SILENCE = round(32768 * 10 ** (-50 / 20))  # -50 dBFS, clip processing's silence threshold


def _load_espeak() -> None:
    """Make pyttsx3's bindings find the bundled libespeak-ng and its data (they only look up libespeak-ng.so.1)."""
    import espeakng_loader

    folder = Path(espeakng_loader.__file__).parent
    library = folder / "libespeak-ng.so.1"
    if not library.exists():
        library = Path(espeakng_loader.get_library_path())
    data = Path(espeakng_loader.get_data_path())
    if not (data / "phontab").exists():
        raise RuntimeError(f"espeak-ng data missing at {data}; reinstall with: pip install --force-reinstall espeakng-loader")
    os.environ["ESPEAK_DATA_PATH"] = str(data.parent)
    ctypes.CDLL(str(library), mode=ctypes.RTLD_GLOBAL)


class Voice(NamedTuple):
    """One of espeak-ng's voices, as pyttsx3 describes it."""

    id: str
    name: str
    languages: list[str]


def espeak_voices(espeak: Any) -> list[Voice]:
    """espeak-ng's voices as pyttsx3's ``EspeakDriver.getProperty("voices")`` lists them, through the same
    bindings (``espeak``: ``pyttsx3.drivers._espeak``, initialised): the identifier lower-cased as the id, the
    name, and the first language without its priority byte.

    Not through the driver itself: importing it (tempfile, shutil, subprocess, logging: a dozen more shared
    libraries mapped) made the fork behind every line a millisecond slower, some 0.15 s of CPU in a cold
    40-minute render. A test holds the two lists equal.
    """
    voices = []
    for voice in espeak.ListVoices(None):
        languages = [voice.languages[1:].decode("utf-8", errors="ignore")] if voice.languages else []
        voices.append(Voice(voice.identifier.decode("utf-8").lower(), voice.name.decode("utf-8"), languages))
    return voices


class Speaker:
    """libespeak-ng in synchronous mode: one line per call, in a fresh fork, every setting applied first."""

    def __init__(self) -> None:
        from pyttsx3.drivers import _espeak

        self.espeak = _espeak
        self.sample_rate = _espeak.Initialize(_espeak.AUDIO_OUTPUT_SYNCHRONOUS, 0)
        if self.sample_rate <= 0:
            raise RuntimeError("libespeak-ng could not be initialised")
        self.chunks: list[bytes] = []
        _espeak.SetSynthCallback(self._collect)
        current = _espeak.GetCurrentVoice()
        self.default_voice = current.contents.identifier.decode("utf-8") if current and current.contents.identifier \
            else "gmw/en"
        self.voice_ids = {v.id: v for v in espeak_voices(_espeak)}
        load_audioop()  # for shaping: imported once here, not again in every forked child

    def _collect(self, wav: Any, samples: int, events: Any) -> int:
        if samples > 0:
            self.chunks.append(ctypes.string_at(wav, samples * ctypes.sizeof(ctypes.c_short)))
        return 0  # 0: go on

    def voices(self) -> list[dict[str, Any]]:
        return [
            {"id": v.id, "name": v.name, "languages": [str(lang) for lang in (v.languages or [])]}
            for v in self.voice_ids.values()
        ]

    def _resolve_voice(self, voice: dict[str, Any]) -> str:
        if voice.get("id"):
            if voice["id"] not in self.voice_ids:
                raise ValueError(f"unknown voice id {voice['id']!r} (see `voiceguide voices`)")
            return str(voice["id"])
        language = (voice.get("language") or "").lower()
        if not language:
            return self.default_voice
        for v in self.voice_ids.values():
            if language in [str(lang).lower() for lang in v.languages or []]:
                return str(v.id)
        for v in self.voice_ids.values():
            if v.id.lower().endswith("/" + language):
                return str(v.id)
        raise ValueError(f"no voice for language {language!r} (see `voiceguide voices`)")

    def _configure(self, voice: dict[str, Any], rate: int, gap: int) -> None:
        """Apply every setting (the voice first: loading a voice may reset the others)."""
        espeak = self.espeak
        name = self._resolve_voice(voice)
        if espeak.SetVoiceByName(name.encode("utf-8")) != espeak.EE_OK:
            raise ValueError(f"espeak-ng cannot load the voice {name!r}")
        volume = DEFAULT_VOLUME if voice.get("volume") is None else float(voice["volume"])
        pitch = DEFAULT_PITCH if voice.get("pitch") is None else int(voice["pitch"])
        for parameter, value in ((espeak.RATE, rate), (espeak.VOLUME, round(volume * 100)), (espeak.PITCH, pitch),
                                 (WORDGAP, gap)):
            if espeak.SetParameter(parameter, value, 0) != espeak.EE_OK:
                raise RuntimeError(f"espeak-ng refused parameter {parameter} = {value}")

    def say(self, text: str, path: str, voice: dict[str, Any]) -> None:
        """Speak ``text`` into a WAV at ``path`` in a forked child; returns when the line is complete.

        libespeak-ng keeps state between utterances (the wave generator's phase
        and pitch-flutter counters survive even espeak_Terminate), so a line's
        length depended on which lines the worker spoke before it, by up to a
        pitch period or more. A child forked from this never-used process starts
        from the same state every time (synchronous mode has no threads, so
        forking is safe): the same line gives the same samples in any order.
        """
        self._resolve_voice(voice)  # an unknown voice is reported here, before forking
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: speak, report, and leave without running any Python clean-up
            os.close(read_end)
            code = 0
            try:
                self._speak(text, path, voice)
            except BaseException as exc:  # everything goes back as a message, never a traceback
                os.write(write_end, str(exc).encode("utf-8", "replace")[:2000])
                code = 1
            os._exit(code)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            message = pipe.read().decode("utf-8", "replace")
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(message or f"the speech engine died (status {os.waitstatus_to_exitcode(status)})")

    def _synth(self, text: str, voice: dict[str, Any], rate: int, gap: int = 0) -> bytes:
        self._configure(voice, rate, gap)
        self.chunks = []
        status = self.espeak.Synth(text.encode("utf-8"), flags=self.espeak.CHARS_UTF8 | self.espeak.ENDPAUSE)
        if status != self.espeak.EE_OK:
            raise RuntimeError(f"espeak-ng failed to speak (status {status})")
        pcm = b"".join(self.chunks)
        if not pcm:
            raise RuntimeError("the engine produced no audio")
        return pcm

    def _speak(self, text: str, path: str, voice: dict[str, Any]) -> None:
        """Speak at the calibrated rate; then correct the pace of a line long enough to have one.

        The calibration (voiceguide.speech.espeak) is right on average, but the
        pace of single lines differs by up to 10% either way (short words,
        commas). A line of PACED_MIN_WORDS words or more whose measured pace
        (words / trimmed seconds) is off ``wpm`` by more than PACE_TOLERANCE is
        spoken again with the rate scaled by the error (``_pace``); below espeak's slowest
        rate a pause between words makes up the rest. Same steps every time,
        from the same forked state: still deterministic.
        """
        rate = int(voice.get("rate") or DEFAULT_RATE)
        pcm = self._synth(text, voice, rate)
        wpm, words = voice.get("wpm"), count_words(text)
        if wpm and words >= PACED_MIN_WORDS:
            pcm = self._pace(text, voice, pcm, rate, 60 * words / wpm, words)
        out_rate = self.sample_rate
        if voice.get("shape_rate"):  # the clip itself, shaped here while the other worker speaks (see shaping)
            out_rate = int(voice["shape_rate"])
            pcm = shape_speech(pcm, self.sample_rate, out_rate)
        with wave.open(path, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(out_rate)
            wav.writeframes(pcm)

    def _pace(self, text: str, voice: dict[str, Any], pcm: bytes, rate: int, target: float, words: int) -> bytes:
        """Speak again (at most three times) until the line lasts ``target`` seconds within PACE_TOLERANCE."""
        gap, base, per_unit = 0, 0.0, GAP_UNIT_SECONDS
        for _ in range(3):
            seconds = max(spoken_seconds(pcm, self.sample_rate), 0.01)
            if abs(target / seconds - 1) <= PACE_TOLERANCE:
                break
            wanted = rate * seconds / target  # the pace is close to proportional to the rate
            if gap == 0 and wanted >= MIN_RATE:  # the rate alone can do it
                rate = min(round(wanted), MAX_RATE)
            elif rate > MIN_RATE:
                rate = MIN_RATE  # as slow as espeak goes, then pauses between words
            else:
                if gap == 0:
                    base = seconds
                else:  # learn what one unit of pause really costs at this rate
                    per_unit = max((seconds - base) / gap / (words - 1), 0.001)
                gap = max(0, round(gap + (target - seconds) / per_unit / (words - 1)))
            pcm = self._synth(text, voice, rate, gap)
        return pcm


def spoken_seconds(pcm: bytes, sample_rate: int) -> float:
    """Seconds from the first to the last sample above the silence threshold (as clip processing trims)."""
    samples = array("h")
    samples.frombytes(pcm)
    picked = samples[::32]  # every 32nd sample is plenty; only the ends are searched, from each side
    first = next((k for k, value in enumerate(picked) if abs(value) > _SILENCE), None)
    if first is None:
        return 0.0
    last = next(k for k in range(len(picked) - 1, first - 1, -1) if abs(picked[k]) > _SILENCE)
    return (last - first) * 32 / sample_rate


def main() -> None:
    """Serve requests on stdin until it closes."""
    # Keep our protocol on a private copy of stdout: nothing the library prints may reach the caller.
    reply = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    try:
        _load_espeak()
        speaker = Speaker()
    except Exception as exc:  # report any start-up failure as a message, not a traceback
        reply.write(json.dumps({"ok": False, "error": f"cannot start the speech engine: {exc}"}) + "\n")
        return
    reply.write(json.dumps({"ok": True, "ready": True}) + "\n")
    for raw in sys.stdin:
        try:
            request = json.loads(raw)
            if request["op"] == "voices":
                answer: dict[str, Any] = {"ok": True, "voices": speaker.voices()}
            else:
                speaker.say(request["text"], request["path"], request.get("voice") or {})
                answer = {"ok": True}
        except Exception as exc:  # every failure goes back to the parent as data
            answer = {"ok": False, "error": str(exc)}
        reply.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
