"""Render jobs: one queue, one worker thread, progress for Server-Sent Events.

A render already uses every core (speech in worker processes, encoding on all
cores), so renders run one at a time. Each renders into a private temporary
folder that joins the library only when complete; a cancelled or failed render
leaves nothing behind. Cancelling works through the progress callback, which
the library calls often during synthesis and encoding.
"""

from __future__ import annotations

import queue
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from voiceguide.errors import VoiceguideError
from voiceguide.serve import library
from voiceguide.serve.store import AUDIO, COVER, Store


class Cancelled(Exception):
    """The server is stopping: abandon the render."""


@dataclass
class Job:
    id: str
    routine_name: str
    state: str = "queued"  # queued, running, done, error, cancelled
    stage: str = ""
    done: int = 0
    total: int = 0
    error: str | None = None
    session_id: str | None = None
    version: int = 0  # bumped on every change, for the event stream
    created: float = field(default_factory=time.time)

    def snapshot(self) -> dict[str, Any]:
        fraction = self.done / self.total if self.total else 0.0
        return {"id": self.id, "routine": self.routine_name, "state": self.state, "stage": self.stage,
                "done": self.done, "total": self.total, "fraction": round(fraction, 4), "error": self.error,
                "session_id": self.session_id}


class JobQueue:
    """Queue renders; run them one by one in a background thread."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.jobs: dict[str, Job] = {}
        self._queue: queue.Queue[tuple[Job, Any, Any, dict[str, Any]] | None] = queue.Queue()
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="voiceguide-render", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel the running render and anything queued; wait for the worker to let go."""
        self._stop.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
        self.store.clean_tmp()

    def submit(self, routine: Any, options: Any, meta: dict[str, Any]) -> Job:
        job = Job(secrets.token_hex(8), meta.get("routine_name", "session"))
        self.jobs[job.id] = job
        self.start()
        self._queue.put((job, routine, options, meta))
        return job

    def _update(self, job: Job, **changes: Any) -> None:
        with self._changed:
            for name, value in changes.items():
                setattr(job, name, value)
            job.version += 1
            self._changed.notify_all()

    def wait_change(self, job: Job, version: int, timeout: float) -> None:
        """Block (in a thread) until the job changes past ``version`` or the timeout passes."""
        with self._changed:
            self._changed.wait_for(lambda: job.version != version or self._stop.is_set(), timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            item = self._queue.get()
            if item is None:
                break
            job, routine, options, meta = item
            self._render(job, routine, options, meta)
        while not self._queue.empty():  # anything left when stopping is cancelled
            item = self._queue.get_nowait()
            if item is not None:
                self._update(item[0], state="cancelled")

    def _render(self, job: Job, routine: Any, options: Any, meta: dict[str, Any]) -> None:
        work = self.store.new_work_dir()
        self._update(job, state="running")

        def progress(stage: str, done: int, total: int) -> None:
            if self._stop.is_set():
                raise Cancelled
            self._update(job, stage=stage, done=done, total=total)

        try:
            plan = library.render_to(routine, work / AUDIO, options, progress=progress)
            (work / COVER).write_bytes(library.cover_png(plan["routine"]))
            entry = self.store.add_session(work, meta | {
                "title": plan["routine"], "duration": plan["duration"], "chapters": len(plan["chapters"]),
                "stretches": sorted({e["stretch"] for e in plan["events"] if e["stretch"]},
                                    key=[e["stretch"] for e in plan["events"] if e["stretch"]].index),
            })
            self._update(job, state="done", session_id=entry["id"])
        except Cancelled:
            self._update(job, state="cancelled")
        except VoiceguideError as error:
            self._update(job, state="error", error=str(error))
        except Exception as error:  # never let the worker die; report it to the page
            self._update(job, state="error", error=f"render failed: {error}")
        finally:
            shutil.rmtree(work, ignore_errors=True)  # gone already when the render joined the library
