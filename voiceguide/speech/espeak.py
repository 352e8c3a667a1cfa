"""The default engine: pyttsx3 driving the libespeak-ng bundled by espeakng-loader."""

from __future__ import annotations

import sys

from voiceguide.speech.engine import installed_version
from voiceguide.speech.worker import WorkerEngine


class Pyttsx3Engine(WorkerEngine):
    """The default engine: pyttsx3 over the libespeak-ng bundled by espeakng-loader, in worker processes."""

    name = "pyttsx3"
    command = (sys.executable, "-m", "voiceguide.speech.espeak_worker")

    def identity(self) -> str:
        versions = [installed_version(p) for p in ("pyttsx3", "espeakng-loader")]
        return f"pyttsx3-{versions[0]}+espeak-ng-{versions[1]}"
