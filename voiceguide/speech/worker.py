"""Engines whose lines are spoken by worker processes speaking voiceguide's JSON-lines protocol."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from voiceguide.errors import SpeechError
from voiceguide.host import usable_cores
from voiceguide.speech.engine import SYNTH_TIMEOUT, VoiceInfo, VoiceSettings, _quote

_POLL = 0.05  # seconds between looks at the stop flag while waiting for a worker


class Stopped(Exception):
    """Raised inside an engine when another line has already failed: the synthesis is being abandoned."""


def kill_group(process: subprocess.Popen[Any]) -> None:
    """Kill a process started with ``start_new_session=True`` and everything it started, then reap it.

    The group is killed even when its leader has already exited: a program may
    leave children behind (the group lives on while any member does).
    """
    if process.returncode is not None:
        return  # already reaped: its pid (and group id) may belong to another process now
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        if process.poll() is None:
            process.kill()
    process.wait()


def line_jobs(texts: Sequence[str]) -> queue.Queue[tuple[int, str]]:
    """The lines to speak as (index, text) jobs for a pool of threads, longest first: the workers then finish
    together instead of one speaking the introduction alone at the end."""
    jobs: queue.Queue[tuple[int, str]] = queue.Queue()
    for index, text in sorted(enumerate(texts), key=lambda job: -len(job[1])):
        jobs.put((index, text))
    return jobs


class Crew:
    """The workers of one synthesis: an interrupt stops them all at once, from the thread that hears it.

    Workers start under the lock and are registered before their (slow) start-up,
    so none can slip past ``stop_all``; once it has run, no new worker starts.
    """

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.live: set[subprocess.Popen[str]] = set()

    def start(self, command: Sequence[str]) -> subprocess.Popen[str]:
        """Start a worker process in its own process group (Stopped once stopping has begun)."""
        with self.lock:
            if self.stop.is_set():
                raise Stopped
            process = subprocess.Popen(
                list(command),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                encoding="utf-8",
                start_new_session=True,  # its own process group: killing it kills whatever it started too
            )
            self.live.add(process)
            return process

    def stop_all(self) -> None:
        """Start no more workers and kill every one started, with whatever each started."""
        with self.lock:
            self.stop.set()
            live = list(self.live)
        for process in live:
            kill_group(process)


class _Worker:
    """One speech worker subprocess (in its own process group) with a line-based JSON protocol and timeouts."""

    def __init__(self, command: Sequence[str], crew: Crew | None = None) -> None:
        crew = crew or Crew()
        self.stop = crew.stop
        self.process = crew.start(command)
        self.replies: queue.Queue[str | None] = queue.Queue()
        assert self.process.stdout is not None
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()
        try:
            hello = self._receive(SYNTH_TIMEOUT)  # starting may be slow on a busy machine, whatever a line's timeout
        except TimeoutError:
            self.close()
            raise SpeechError(f"the speech engine did not start within {SYNTH_TIMEOUT:g} s") from None
        except Stopped:
            self.close()
            raise
        if not hello.get("ok"):
            self.close()
            raise SpeechError(str(hello.get("error", "the speech engine failed to start")))

    def _read(self, stream: IO[str]) -> None:
        try:
            for line in stream:
                self.replies.put(line)
        except (OSError, ValueError):  # the stream was closed under us by close()
            pass
        self.replies.put(None)

    def _receive(self, timeout: float) -> dict[str, Any]:
        """The next answer; TimeoutError after ``timeout`` s, Stopped as soon as the stop flag is set."""
        deadline = time.monotonic() + timeout
        while True:
            if self.stop.is_set():
                raise Stopped
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            try:
                line = self.replies.get(timeout=min(_POLL, left))
                break
            except queue.Empty:
                continue
        if line is None:
            return {"ok": False, "error": f"the speech engine exited (code {self.process.wait()})"}
        try:
            return dict(json.loads(line))
        except ValueError:  # not our protocol: something in the engine printed to stdout
            return {"ok": False, "error": f"the speech engine answered garbage: {line.strip()[:60]!r}"}

    def request(self, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request and wait for its answer (TimeoutError, Stopped as in ``_receive``)."""
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(payload) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            return {"ok": False, "error": "the speech engine exited"}
        return self._receive(timeout)

    def close(self) -> None:
        """Kill the worker's whole process group and close its pipes."""
        kill_group(self.process)
        for stream in (self.process.stdin, self.process.stdout):
            if stream:
                with contextlib.suppress(OSError):
                    stream.close()


class WorkerEngine:
    """An engine whose lines are spoken by worker processes speaking voiceguide's JSON-lines protocol.

    One worker per core at most, each line with a timeout. A line that hangs,
    fails, or comes back as an empty or unreadable WAV is retried once in a
    fresh worker, then reported as an error naming the line; the other lines
    stop at once (a hung engine costs one line's timeout and retry, not one per
    line). Each worker runs in its own process group, killed whole.

    Subclasses set ``name`` and ``command`` (the worker's argument list) and may
    override ``worker_voice`` to translate the settings into the engine's own.
    """

    name = "worker"
    command: Sequence[str] = ()
    paced = False  # True: the engine honours the rate, so a clip far off the asked pace is a fault

    def __init__(self, workers: int | None = None, timeout: float = SYNTH_TIMEOUT) -> None:
        self.workers = workers or usable_cores()
        self.timeout = timeout

    def identity(self) -> str:
        return self.name

    def worker_voice(self, voice: VoiceSettings) -> dict[str, Any]:
        """The ``voice`` sent to the worker with each line (the settings as they are, by default)."""
        return voice.synthesis()

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
        return self._synthesize(texts, self.worker_voice(voice), folder, on_done)

    def _synthesize(self, texts: Sequence[str], settings: dict[str, Any], folder: Path,
                    on_done: Callable[[str], None] | None) -> dict[str, Path]:
        """Every line spoken by the workers with ``settings`` (what each request carries) into ``folder``."""
        jobs = line_jobs(texts)
        results: dict[str, Path] = {}
        failures: list[SpeechError] = []
        crew = Crew()
        count = max(1, min(self.workers, len(texts)))
        threads = [threading.Thread(target=self._serve, args=(jobs, settings, folder, results, failures, on_done, crew),
                                    daemon=True) for _ in range(count)]
        started: list[threading.Thread] = []
        try:
            for thread in threads:
                thread.start()
                started.append(thread)
            for thread in started:
                thread.join()
        except BaseException:
            crew.stop_all()  # Ctrl-C or SIGTERM: every worker's process group killed now, none started after
            raise
        finally:
            crew.stop.set()  # every thread returns (a thread whose start was interrupted sees it at once)
            for thread in threads:
                if thread.ident is not None:  # started, even if its start() call was interrupted
                    thread.join()
        if failures:
            raise failures[0]
        return results

    def _speak_once(self, worker: _Worker, text: str, path: Path, settings: dict[str, Any]) -> str:
        """Speak one line; return '' on success or what went wrong."""
        path.unlink(missing_ok=True)
        try:
            answer = worker.request({"op": "say", "text": text, "path": str(path), "voice": settings}, self.timeout)
        except TimeoutError:
            return f"timed out after {self.timeout:g} s"
        if not answer.get("ok"):
            return str(answer.get("error"))
        from voiceguide.speech.clip import check_wav  # WAV reading is loaded only once there is speech to read

        try:
            check_wav(path)
        except SpeechError as exc:
            return str(exc)
        return ""

    def _serve(self, jobs: queue.Queue[tuple[int, str]], settings: dict[str, Any], folder: Path,
               results: dict[str, Path], failures: list[SpeechError], on_done: Callable[[str], None] | None,
               crew: Crew) -> None:
        worker: _Worker | None = None
        try:
            while not crew.stop.is_set():
                try:
                    index, text = jobs.get_nowait()
                except queue.Empty:
                    return
                path = folder / f"line-{index}.wav"
                error = ""
                for _attempt in range(2):  # one retry in a fresh worker
                    if worker is None:
                        worker = _Worker(self.command, crew)
                    error = self._speak_once(worker, text, path, settings)
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
                    crew.stop.set()  # the other lines stop now instead of each waiting for its own timeout
        except SpeechError as exc:
            failures.append(exc)
            crew.stop.set()
        except Stopped:
            pass
        finally:
            if worker is not None:
                worker.close()
