"""Engines whose lines are spoken by worker processes speaking voiceguide's JSON-lines protocol."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

from voiceguide.errors import SpeechError
from voiceguide.host import usable_cores
from voiceguide.speech.clip import check_wav
from voiceguide.speech.engine import SYNTH_TIMEOUT, VoiceInfo, VoiceSettings, _quote

# --- pyttsx3 (espeak-ng) engine -------------------------------------------------


class _Worker:
    """One speech worker subprocess with a line-based JSON protocol and timeouts."""

    def __init__(self, command: Sequence[str], run: _Run | None = None) -> None:
        with run.lock if run is not None else contextlib.nullcontext():
            if run is not None and run.stop.is_set():
                raise SpeechError("interrupted")  # never start a worker once an interrupt is stopping them
            self.process = subprocess.Popen(
                list(command),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                encoding="utf-8",
                start_new_session=True,  # its own process group: close() kills it with any children it started
            )
            if run is not None:
                run.live.add(self)  # known before its slow start-up, so an interrupt can kill it at any point
        self.replies: queue.Queue[str | None] = queue.Queue()
        assert self.process.stdout is not None
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()
        try:
            hello = self._receive(SYNTH_TIMEOUT)
        except TimeoutError:
            self.close()
            raise SpeechError(f"the speech engine did not start within {SYNTH_TIMEOUT:g} s") from None
        if not hello.get("ok"):
            self.close()
            raise SpeechError(str(hello.get("error", "the speech engine failed to start")))

    def _read(self, stream: IO[str]) -> None:
        with contextlib.suppress(OSError, ValueError):  # ValueError: closed by an interrupt's close()
            for line in stream:
                self.replies.put(line)
        self.replies.put(None)

    def _receive(self, timeout: float) -> dict[str, Any]:
        try:
            line = self.replies.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError from None
        if line is None:
            return {"ok": False, "error": f"the speech engine exited (code {self.process.wait()})"}
        try:
            return dict(json.loads(line))
        except ValueError:  # not our protocol: something in the engine printed to stdout
            return {"ok": False, "error": f"the speech engine answered garbage: {line.strip()[:60]!r}"}

    def request(self, payload: dict[str, Any], timeout: float = SYNTH_TIMEOUT) -> dict[str, Any]:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(payload) + "\n")
            self.process.stdin.flush()
        except (OSError, ValueError):  # ValueError: closed under us (an interrupt is stopping every worker)
            return {"ok": False, "error": "the speech engine exited"}
        return self._receive(timeout)

    def kill(self) -> None:
        """Kill the worker and anything it started (its process group), without waiting."""
        if self.process.returncode is None:  # once reaped, its pid (and group id) may belong to another
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if hasattr(os, "killpg"):
                    os.killpg(self.process.pid, signal.SIGKILL)
                else:  # no process groups (Windows)
                    self.process.kill()

    def close(self) -> None:
        self.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream:
                stream.close()


class _Run:
    """One synthesize call's workers, so an interrupt can stop them all at once."""

    def __init__(self) -> None:
        self.live: set[_Worker] = set()
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def stop_all(self) -> None:
        """Start no more workers and kill every one started (workers start under the lock: none slips by)."""
        with self.lock:
            self.stop.set()
            live = list(self.live)
        for worker in live:
            worker.close()


class WorkerEngine:
    """An engine whose lines are spoken by worker processes speaking voiceguide's JSON-lines protocol.

    One worker per core at most, each line with a timeout. A line that hangs,
    fails, or comes back as an empty or unreadable WAV is retried once in a
    fresh worker, then reported as an error naming the line.
    """

    name = "worker"
    command: Sequence[str] = ()

    def __init__(self, workers: int | None = None, timeout: float = SYNTH_TIMEOUT) -> None:
        self.workers = workers or usable_cores()
        self.timeout = timeout

    def identity(self) -> str:
        return self.name

    def voices(self) -> list[VoiceInfo]:
        worker = _Worker(self.command)
        try:
            answer = worker.request({"op": "voices"}, self.timeout)
        except TimeoutError:
            raise SpeechError("the speech engine hung while listing voices") from None
        finally:
            worker.close()
        if not answer.get("ok"):
            raise SpeechError(str(answer.get("error")))
        return [VoiceInfo(v["id"], v["name"], tuple(v["languages"])) for v in answer["voices"]]

    def synthesize(self, texts: Sequence[str], voice: VoiceSettings, folder: Path,
                   on_done: Callable[[str], None] | None = None) -> dict[str, Path]:
        jobs: queue.Queue[tuple[int, str]] = queue.Queue()
        for index, text in enumerate(texts):
            jobs.put((index, text))
        results: dict[str, Path] = {}
        failures: list[SpeechError] = []
        count = max(1, min(self.workers, len(texts)))
        run = _Run()
        threads = [threading.Thread(target=self._serve, args=(jobs, voice, folder, results, failures, on_done, run),
                                    daemon=True) for _ in range(count)]
        started: list[threading.Thread] = []
        try:
            for thread in threads:
                thread.start()
                started.append(thread)
            for thread in threads:
                thread.join()
        except BaseException:
            # Ctrl-C or SIGTERM: no new lines, no retries, and every worker's process group killed now,
            # so the render stops within moments instead of after the lines in flight.
            run.stop_all()
            for thread in started:  # (one whose start was interrupted sees the stop and ends at once)
                thread.join(timeout=5.0)  # moments: every wait of theirs ends when their worker dies
            raise
        if failures:
            raise failures[0]
        return results

    def _speak_once(self, worker: _Worker, text: str, path: Path, voice: VoiceSettings) -> str:
        """Speak one line; return '' on success or what went wrong."""
        path.unlink(missing_ok=True)
        try:
            answer = worker.request({"op": "say", "text": text, "path": str(path), "voice": asdict(voice)},
                                    self.timeout)
        except TimeoutError:
            return f"timed out after {self.timeout:g} s"
        if not answer.get("ok"):
            return str(answer.get("error"))
        try:
            check_wav(path)
        except SpeechError as exc:
            return str(exc)
        return ""

    def _serve(self, jobs: queue.Queue[tuple[int, str]], voice: VoiceSettings, folder: Path,
               results: dict[str, Path], failures: list[SpeechError], on_done: Callable[[str], None] | None,
               run: _Run) -> None:
        worker: _Worker | None = None
        try:
            while not failures and not run.stop.is_set():
                try:
                    index, text = jobs.get_nowait()
                except queue.Empty:
                    return
                path = folder / f"line-{index}.wav"
                error = ""
                for _attempt in range(2):  # one retry in a fresh worker
                    if run.stop.is_set():
                        return
                    if worker is None:
                        worker = _Worker(self.command, run)
                    error = self._speak_once(worker, text, path, voice)
                    if not error:
                        results[text] = path
                        if on_done is not None:
                            on_done(text)
                        break
                    worker.close()
                    worker = None
                    if "unknown voice" in error or "no voice for" in error:
                        break  # retrying will not find a voice that does not exist
                if error:
                    failures.append(SpeechError(f"speech engine failed on line {_quote(text)}: {error}"))
        except SpeechError as exc:
            failures.append(exc)
        except Exception:
            if not run.stop.is_set():
                raise
            # stopping: a worker closed under this thread; the interrupt is what the caller hears about
        finally:
            if worker is not None:
                worker.close()
