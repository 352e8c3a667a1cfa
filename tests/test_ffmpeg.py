"""The ffmpeg helpers: processes never outlive an interrupt."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
from typing import Any

import pytest

from voiceguide.ffmpeg import ffmpeg_exe, run_ffmpeg_together


def test_an_interrupt_while_several_ffmpegs_measure_kills_them_all(monkeypatch: pytest.MonkeyPatch) -> None:
    # Ten hours of tone through ebur128 each: minutes of work, so only the interrupt can end them.
    command = [ffmpeg_exe(), "-hide_banner", "-nostats", "-f", "lavfi", "-i", "sine=d=36000", "-af", "ebur128",
               "-f", "null", "-"]
    started: list[subprocess.Popen[Any]] = []  # what run_ffmpeg_together starts (ffmpeg_exe() may run one itself)
    real = subprocess.Popen

    def spy(*args: Any, **kwargs: Any) -> subprocess.Popen[Any]:
        process = real(*args, **kwargs)
        started.append(process)
        return process

    monkeypatch.setattr(subprocess, "Popen", spy)
    ctrl_c = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    with tempfile.TemporaryFile() as first, tempfile.TemporaryFile() as second:
        ctrl_c.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                run_ffmpeg_together([command, command], [first, second])
        finally:
            ctrl_c.cancel()
    assert len(started) == 2
    assert all(process.poll() == -signal.SIGKILL for process in started)  # killed and reaped, not left running
