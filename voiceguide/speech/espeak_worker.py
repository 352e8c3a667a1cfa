"""A speech worker process: pyttsx3 driving the libespeak-ng shipped by espeakng-loader.

Run as ``python -m voiceguide.speech.espeak_worker``; it reads one JSON request per
line on stdin and answers one JSON line. It runs in its own process because
pyttsx3's espeak driver can hang, print to stdout, or call ``exit(1)`` inside
the library; the parent enforces a timeout and restarts it.

Requests: ``{"op": "voices"}`` and
``{"op": "say", "text": ..., "path": ..., "voice": {...}}``.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import time
import wave
from pathlib import Path
from typing import Any


def _load_espeak() -> None:
    """Make pyttsx3 find the bundled libespeak-ng and its data (it only looks up libespeak-ng.so.1)."""
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


class Speaker:
    """One pyttsx3 engine, used one utterance per runAndWait (the only reliable way)."""

    def __init__(self) -> None:
        import pyttsx3

        self.engine = pyttsx3.init("espeak")
        self.finished = False
        self.engine.connect("finished-utterance", self._on_finished)
        self.current: dict[str, Any] = {}
        self.voice_ids = {v.id: v for v in self.engine.getProperty("voices")}

    def _on_finished(self, name: object, completed: bool) -> None:
        self.finished = True

    def voices(self) -> list[dict[str, Any]]:
        return [
            {"id": v.id, "name": v.name, "languages": [str(lang) for lang in (v.languages or [])]}
            for v in self.voice_ids.values()
        ]

    def _resolve_voice(self, voice: dict[str, Any]) -> str | None:
        if voice.get("id"):
            if voice["id"] not in self.voice_ids:
                raise ValueError(f"unknown voice id {voice['id']!r} (see `voiceguide voices`)")
            return str(voice["id"])
        language = (voice.get("language") or "").lower()
        if not language:
            return None
        for v in self.voice_ids.values():
            if language in [str(lang).lower() for lang in v.languages or []]:
                return str(v.id)
        for v in self.voice_ids.values():
            if v.id.lower().endswith("/" + language):
                return str(v.id)
        raise ValueError(f"no voice for language {language!r} (see `voiceguide voices`)")

    def _configure(self, voice: dict[str, Any]) -> None:
        if voice == self.current:
            return
        voice_id = self._resolve_voice(voice)
        if voice_id:
            self.engine.setProperty("voice", voice_id)
        if voice.get("rate"):
            self.engine.setProperty("rate", int(voice["rate"]))
        if voice.get("volume") is not None:
            self.engine.setProperty("volume", float(voice["volume"]))
        if voice.get("pitch") is not None:
            self.engine.setProperty("pitch", int(voice["pitch"]))
        self.current = dict(voice)

    def say(self, text: str, path: str, voice: dict[str, Any], timeout: float = 20.0) -> None:
        self._configure(voice)
        self.finished = False
        self.engine.save_to_file(text, path)
        self.engine.runAndWait()
        # The first runAndWait can return before the WAV is complete: wait for the
        # finished-utterance callback and a readable WAV with audio in it.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.finished and _wav_frames(path) > 0:
                return
            time.sleep(0.005)
        raise RuntimeError("the engine produced no audio")


def _wav_frames(path: str) -> int:
    try:
        with wave.open(path, "rb") as wav:
            return wav.getnframes()
    except (OSError, EOFError, wave.Error):
        return 0


def main() -> None:
    """Serve requests on stdin until it closes."""
    # Keep our protocol on a private copy of stdout; pyttsx3 prints "Audio saved to ..."
    # on fd 1, which must never reach the caller.
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
