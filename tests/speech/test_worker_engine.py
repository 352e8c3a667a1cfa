"""Worker engines: each worker is a process group, killed whole; a failed line stops the others."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from processes import all_gone

from voiceguide.errors import SpeechError
from voiceguide.speech.cache import ClipCache
from voiceguide.speech.engine import VoiceSettings
from voiceguide.speech.synth import synthesize
from voiceguide.speech.worker import WorkerEngine

FAULTY_WORKER = Path(__file__).with_name("faulty_worker.py")


class FaultyEngine(WorkerEngine):
    """The real worker machinery driving tests/speech/faulty_worker.py."""

    name = "faulty"
    command = (sys.executable, str(FAULTY_WORKER))


def test_a_hung_worker_and_everything_it_started_are_killed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            cache: ClipCache) -> None:
    """Before: the worker was killed but the process it had started lived on."""
    monkeypatch.setenv("FAULTY_WORKER_MARKS", str(tmp_path))
    started = time.monotonic()
    with pytest.raises(SpeechError, match=r"'spawn and hang \d'.*timed out after 1 s"):
        synthesize([f"spawn and hang {n}" for n in range(6)], VoiceSettings(), FaultyEngine(workers=2, timeout=1.0),
                   cache, 44100)
    assert time.monotonic() - started < 2 * 1.0 + 2.5  # one line's timeout and retry, not one per line
    pids = [int(pid) for f in tmp_path.glob("pids-*") for pid in f.read_text().split()]
    assert len(pids) >= 4
    assert all_gone(pids), "a worker or its child outlived the synthesis"
