"""The ffmpeg helpers: processes never outlive an interrupt."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest

from voiceguide.ffmpeg import PIPE_BYTES, ffmpeg_exe, run_ffmpeg_together, widen_pipe


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


def test_a_widened_pipe_takes_a_megabyte_without_a_reader() -> None:
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb") as reader, os.fdopen(write_end, "wb", buffering=0) as writer:
        os.set_blocking(write_end, False)  # a write takes what the pipe holds and returns
        narrow = writer.write(bytes(PIPE_BYTES))
        assert narrow is not None and narrow < PIPE_BYTES  # the usual pipe: 64 KB
        assert len(reader.read(narrow)) == narrow
        assert widen_pipe(writer) == PIPE_BYTES
        assert writer.write(bytes(PIPE_BYTES)) == PIPE_BYTES


def test_widen_pipe_leaves_what_is_not_a_pipe_as_it_is(tmp_path: Path) -> None:
    with open(tmp_path / "f", "wb") as handle:
        assert widen_pipe(handle) is None
    assert widen_pipe(None) is None


@pytest.mark.parametrize("where", ["popen", "returned"])
def test_ctrl_c_just_as_an_ffmpeg_starts_leaves_none_running(where: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """run_ffmpeg_together and run_ffmpeg: a Ctrl-C while Popen starts a process, or the moment it is returned,
    before the caller has taken note of it: the process is stopped and reaped all the same."""
    from conftest import interrupt_as_ffmpeg_starts, our_children

    from voiceguide import ffmpeg
    from voiceguide.ffmpeg import run_ffmpeg

    sleeper = [os.fspath(tmp_path / "ffmpeg")]
    Path(sleeper[0]).write_text("#!/bin/sh\nexec sleep 60\n")
    Path(sleeper[0]).chmod(0o755)
    with tempfile.TemporaryFile() as first, tempfile.TemporaryFile() as second:
        with monkeypatch.context() as patched:
            started = interrupt_as_ffmpeg_starts(patched, where, 2, module=ffmpeg)
            with pytest.raises(KeyboardInterrupt):
                run_ffmpeg_together([sleeper, sleeper], [first, second])
        assert len(started) == 2 and all(process.returncode is not None for process in started)
        if where == "popen":  # run_ffmpeg starts its ffmpeg itself, with a pipe to feed it
            with monkeypatch.context() as patched:
                started = interrupt_as_ffmpeg_starts(patched, where, 1)
                with pytest.raises(KeyboardInterrupt):
                    run_ffmpeg(sleeper, iter([bytes(1000)]), first)
            assert len(started) == 1 and started[0].returncode is not None
    assert our_children() == []
