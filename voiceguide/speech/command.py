"""Any text-to-speech program run once per line from an argument template."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from voiceguide.errors import OptionError, SpeechError
from voiceguide.host import usable_cores
from voiceguide.speech.clip import check_wav
from voiceguide.speech.engine import SYNTH_TIMEOUT, VoiceInfo, VoiceSettings, _quote
from voiceguide.speech.worker import kill_group, line_jobs

STDERR_TAIL = 4096  # bytes of a failing program's stderr kept for its error message
_POLL = 0.05  # seconds between looks at the stop flag while a program runs


class CommandEngine:
    """Any text-to-speech program that writes a WAV, run once per line from an argument template.

    The template is a list of arguments; ``{output}`` becomes the WAV path,
    ``{text}`` the line (without it, the line is written to the program's
    stdin, as Piper reads it), and ``{voice}``, ``{rate}`` the voice settings.
    No shell is involved. Lines run in parallel (one per core), each with a
    timeout; a failure, hang or empty WAV is retried once, then reported
    naming the line, and the other lines stop at once. Each run is its own
    process group, killed whole; its stdout is discarded. Clips are cached
    like the default engine's, keyed by the template and the program's size
    and modification time.
    """

    name = "command"

    def __init__(self, template: Sequence[str], workers: int | None = None, timeout: float = SYNTH_TIMEOUT) -> None:
        if not template or not template[0].strip():
            raise OptionError("engine command: the command is empty")
        if not any("{output}" in arg for arg in template):
            raise OptionError("engine command: it must contain {output}, where the program writes its WAV")
        self.template = list(template)
        self.workers = workers or usable_cores()
        self.timeout = timeout

    def _program(self) -> Path:
        import shutil

        found = shutil.which(self.template[0])
        if found is None:
            raise SpeechError(f"speech program not found: {self.template[0]} (check --engine-command)")
        return Path(found)

    def identity(self) -> str:
        program = self._program()
        stat = program.stat()
        return "command:" + json.dumps([str(program), stat.st_size, int(stat.st_mtime), self.template[1:]])

    def voices(self) -> list[VoiceInfo]:
        return []

    def synthesize(self, texts: Sequence[str], voice: VoiceSettings, folder: Path,
                   on_done: Callable[[str], None] | None = None) -> dict[str, Path]:
        program = str(self._program())
        jobs = line_jobs(texts)
        results: dict[str, Path] = {}
        failures: list[SpeechError] = []
        stop = threading.Event()

        def serve() -> None:
            while not stop.is_set():
                try:
                    index, text = jobs.get_nowait()
                except queue.Empty:
                    return
                path = folder / f"line-{index}.wav"
                error = ""
                for _attempt in range(2):
                    error = self._run(program, text, path, voice, stop)
                    if not error or stop.is_set():
                        break
                if stop.is_set():
                    return
                if error:
                    failures.append(SpeechError(f"speech program failed on line {_quote(text)}: {error}"))
                    stop.set()  # the other lines stop now instead of each waiting for its own timeout
                    return
                results[text] = path
                if on_done is not None:
                    on_done(text)

        threads = [threading.Thread(target=serve) for _ in range(max(1, min(self.workers, len(texts))))]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                thread.join()
        finally:
            stop.set()  # also on Ctrl-C here: every running program is killed
            for thread in threads:
                thread.join()
        if failures:
            raise failures[0]
        return results

    def _run(self, program: str, text: str, path: Path, voice: VoiceSettings, stop: threading.Event) -> str:
        """Run the program for one line; return '' on success or what went wrong.

        Its stdout goes nowhere (a chatty program cannot fill memory); only the
        last STDERR_TAIL bytes of its stderr are read, for the message. It runs in
        its own process group, killed whole on a timeout or when ``stop`` is set.
        """
        path.unlink(missing_ok=True)
        values = {"output": str(path), "text": text, "voice": voice.id or voice.language or "",
                  "rate": str(voice.rate or "")}
        args = [program] + [fill_placeholders(arg, values) for arg in self.template[1:]]
        feed = None if any("{text}" in arg for arg in self.template) else (text + "\n").encode("utf-8")
        with tempfile.TemporaryFile() as errors:
            try:
                process = subprocess.Popen(args, stdin=subprocess.PIPE if feed else subprocess.DEVNULL,
                                           stdout=subprocess.DEVNULL, stderr=errors, start_new_session=True)
            except OSError as exc:
                return f"cannot run {program} ({exc.strerror})"
            try:
                code = self._wait(process, feed, stop)
            finally:
                kill_group(process)  # and whatever it started, even when it exited
            if code is None:
                return f"timed out after {self.timeout:g} s"
            if code != 0:
                return f"exit {code}: {_tail(errors)}"
        try:
            check_wav(path)
        except SpeechError as exc:
            return str(exc)
        return ""

    def _wait(self, process: subprocess.Popen[bytes], feed: bytes | None, stop: threading.Event) -> int | None:
        """The program's exit code; None if it ran out of time or the synthesis was stopped."""
        if feed is not None and process.stdin is not None:
            # In a thread: a program that never reads its input must not block us past the timeout.
            threading.Thread(target=_feed, args=(process.stdin, feed), daemon=True).start()
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline and not stop.is_set():
            with contextlib.suppress(subprocess.TimeoutExpired):
                return process.wait(timeout=min(_POLL, max(0.0, deadline - time.monotonic())))
        return None


def _feed(stdin: IO[bytes], data: bytes) -> None:
    """Write the line to the program's stdin and close it (a program that exits early is its own business)."""
    with contextlib.suppress(OSError):
        stdin.write(data)
    with contextlib.suppress(OSError):
        stdin.close()


def _tail(errors: IO[bytes]) -> str:
    """The last line of the last STDERR_TAIL bytes the program wrote to stderr."""
    errors.seek(0, os.SEEK_END)
    errors.seek(max(0, errors.tell() - STDERR_TAIL))
    lines = errors.read().decode("utf-8", "replace").strip().splitlines()
    return lines[-1][:200] if lines else "no message"


_PLACEHOLDER = re.compile(r"\{(output|text|voice|rate)\}")


def fill_placeholders(arg: str, values: dict[str, str]) -> str:
    """Replace {output}, {text}, {voice} and {rate} in ONE pass; leave any other braces alone.

    One pass means a value is never searched again: a line that says "{rate}"
    reaches the program as those six characters, not as the rate.
    """
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], arg)
