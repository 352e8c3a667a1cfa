"""What this machine offers voiceguide: its cache folder, small remembered results, and the cores it may use."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Small results kept beside the clips (each in a folder of its own; `cache clear` empties them too).
NOTE_KINDS = ("routines", "levels", "music", "models")


def default_cache_dir() -> Path:
    """Where clips, remembered routines and measurements are cached: $VOICEGUIDE_CACHE_DIR, else the user's cache."""
    override = os.environ.get("VOICEGUIDE_CACHE_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_cache_dir("voiceguide", appauthor=False))


def recall(folder: Path | None, kind: str, key: str) -> bytes | None:
    """A result remembered under ``folder/kind/key.json``, or None (no folder, never stored, unreadable)."""
    if folder is None:
        return None
    try:
        return (folder / kind / f"{key}.json").read_bytes()
    except OSError:
        return None


def remember(folder: Path | None, kind: str, key: str, data: bytes) -> None:
    """Store a result atomically; quietly do nothing if it cannot be written (it only saves time)."""
    if folder is None:
        return
    path = folder / kind / f"{key}.json"
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp.write_bytes(data)
        os.replace(temp, path)
    except OSError:
        temp.unlink(missing_ok=True)


def usable_cores() -> int:
    """Cores this process may run on (respects taskset and container CPU sets, unlike os.cpu_count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def release_free_memory() -> None:
    """Hand the memory Python has freed back to the system, where the C library allows it (glibc's
    malloc_trim; elsewhere nothing happens). Levelling a long session builds per-millisecond tables of every
    line and frees them, but the heap keeps its high-water mark resident: at 2 hours 71 MB instead of 45 for the
    whole encoding, and every process the render starts meanwhile briefly counts that twice."""
    trim = _glibc("malloc_trim")
    if trim is not None:
        trim(0)


def _glibc(name: str) -> Any:
    """The function ``name`` of the C library the interpreter runs on, or None where there is none (not POSIX,
    or not glibc: musl, macOS)."""
    if os.name != "posix":
        return None
    import ctypes

    try:
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None


MALLOC_ARENAS = 2  # glibc heaps for a render and what it starts (glibc's default: 8 per core)
_M_ARENA_MAX = -8  # mallopt's parameter for it (malloc.h)
_CAPPED_HERE = False  # lean_heap set MALLOC_ARENA_MAX (rather than the user)


def lean_heap() -> None:
    """Cap glibc's malloc at MALLOC_ARENAS heaps, in this process and every process it starts from now on.

    glibc gives threads heaps of their own, and each keeps what it freed: in a 2-hour render, whose encoder
    threads pass PCM around, the render held 59-61 MB while encoding instead of 54-56, and the file check's
    ffmpeg 35-36 instead of 33 (the tree's peak: 96 MB against its 100 MB target, 89-90 capped), for no
    measurable speed (warm and cold 40-minute renders alike, interleaved). Children inherit
    ``MALLOC_ARENA_MAX`` (but the verifying decoder: ``uncapped_env``). One set already is left alone: glibc
    applied it as this process started. Not glibc (musl, macOS): nothing happens.
    """
    global _CAPPED_HERE
    if os.name != "posix" or "MALLOC_ARENA_MAX" in os.environ:
        return
    os.environ["MALLOC_ARENA_MAX"] = str(MALLOC_ARENAS)
    _CAPPED_HERE = True
    mallopt = _glibc("mallopt")
    if mallopt is not None:
        mallopt(_M_ARENA_MAX, MALLOC_ARENAS)  # for the heaps made from now on


def uncapped_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` without the cap lean_heap set (one the user set stays): for a process whose threads each want a
    heap, the verifying decoder (two decoding threads), which ran 0.98 s instead of 0.91 at the median, and up to
    1.6, on a dense 40-minute file capped."""
    if _CAPPED_HERE and env.get("MALLOC_ARENA_MAX") == str(MALLOC_ARENAS):
        del env["MALLOC_ARENA_MAX"]
    return env


def load_audioop() -> Any:  # audioop has no stubs on every Python we support
    """The audioop module (C helpers on 16-bit PCM), imported quietly."""
    with warnings.catch_warnings():  # deprecated on 3.12 (audioop-lts provides it on 3.13+)
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop
    return audioop


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back while the block runs; one that came meanwhile is raised as it ends.

    For steps that must happen whole or not at all (renaming outputs into place, starting a process and
    taking note of it). The handlers are swapped, not the signal mask: Python runs its handlers in the main
    thread whichever thread the signal reaches, so this holds even while other threads (the encoder's) run.
    Off the main thread (where handlers cannot be set) the block just runs.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous: dict[int, Any] = {}
    try:
        # One at a time, inside the try: a signal that lands between the two (raised by SIGTERM's handler, not
        # yet swapped) still finds SIGINT's own handler put back, instead of one holding every later Ctrl-C.
        for kind in (signal.SIGINT, signal.SIGTERM):
            previous[kind] = signal.signal(kind, lambda number, _frame: caught.append(number))
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)  # None: set outside Python
        if caught:
            signal.raise_signal(caught[0])  # to the handler that was in place: raised here, after the block
