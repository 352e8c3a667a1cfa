"""The host module: what the render asks of the machine."""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from voiceguide.host import MALLOC_ARENAS, interrupts_held


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_freed_memory_goes_back_to_the_system() -> None:
    """Many buffers made and freed (as levelling's tables are) stay resident until release_free_memory; in a
    fresh interpreter, so nothing else in the heap pins it."""
    script = """
import gc
from voiceguide.host import release_free_memory
def rss():
    return int([l for l in open("/proc/self/status") if l.startswith("VmRSS")][0].split()[1]) // 1024
kept = [bytearray(20_000) for _ in range(3_000)]  # 60 MB from the C heap (too big for pymalloc)
tail = bytearray(20_000)  # allocated last: the heap's top stays in use, as after levelling
del kept
gc.collect()
before = rss()
release_free_memory()
print(before, rss())
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    before, after = map(int, done.stdout.split())
    assert before - after >= 40, (before, after)


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs POSIX signals")
def test_an_interrupt_during_a_held_block_is_raised_after_it() -> None:
    """Ctrl-C sent inside the block lets the block finish, then arrives; the old handler is back."""
    steps: list[str] = []
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        with interrupts_held():
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
            time.sleep(0.05)  # time for the handler to run, were it the default one
            steps.append("block ended")
        steps.append("after the block")  # not reached: the interrupt is raised as the block ends
    assert steps == ["block ended"]
    assert signal.getsignal(signal.SIGINT) is before


def test_a_held_block_with_no_interrupt_changes_nothing() -> None:
    before = {kind: signal.getsignal(kind) for kind in (signal.SIGINT, signal.SIGTERM)}
    with interrupts_held():
        pass
    assert {kind: signal.getsignal(kind) for kind in before} == before


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs POSIX signals")
def test_an_interrupt_as_the_handlers_are_swapped_in_leaves_none_of_them_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real SIGTERM, with a handler that raises as the CLI's does, landing after SIGINT's holding handler is in
    place and before SIGTERM's: the interrupt goes on and SIGINT's own handler is back (it was left holding, and
    silently dropping, every later Ctrl-C)."""

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    real = signal.signal
    previous_term = real(signal.SIGTERM, on_term)
    before = signal.getsignal(signal.SIGINT)

    def swap(kind: int, handler: object) -> object:
        if kind == signal.SIGTERM:
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGTERM)
            time.sleep(0.05)  # on_term runs here, raising
        return real(kind, handler)  # type: ignore[arg-type]

    monkeypatch.setattr(signal, "signal", swap)
    try:
        with pytest.raises(KeyboardInterrupt), interrupts_held():
            pytest.fail("the block ran")
    finally:
        monkeypatch.undo()
        real(signal.SIGTERM, previous_term)
    assert signal.getsignal(signal.SIGINT) is before


def _environment_with_cap(preset: str | None) -> dict[str, str]:
    """Our environment with MALLOC_ARENA_MAX as the user might have set it (None: not at all)."""
    env = {key: value for key, value in os.environ.items() if key != "MALLOC_ARENA_MAX"}
    return env | ({"MALLOC_ARENA_MAX": preset} if preset else {})


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc")
@pytest.mark.parametrize("preset", [None, "4"], ids=["default", "user-set"])
def test_lean_heap_caps_malloc_arenas_here_and_in_what_starts_after(preset: str | None, tmp_path: Path) -> None:
    """Threads of a process that called lean_heap share MALLOC_ARENAS heaps (glibc's malloc_stats counts them:
    four busy threads get heaps of their own without it), its children inherit the cap, and a cap the user
    set is kept."""
    probe = (
        "import ctypes, os, subprocess, sys, threading\n"
        "from voiceguide.host import lean_heap\n"
        "if sys.argv[1] == 'lean': lean_heap()\n"
        "together = threading.Barrier(4)\n"
        "def churn():\n"
        "    together.wait()  # all four alive at once: each would get a heap of its own\n"
        "    for _ in range(200): bytearray(300_000); [bytes(600) for _ in range(300)]\n"
        "    together.wait()\n"
        "threads = [threading.Thread(target=churn) for _ in range(4)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "libc = ctypes.CDLL(None); libc.malloc_stats()\n"
        "child = subprocess.run([sys.executable, '-c', 'import os; print(os.environ.get(\"MALLOC_ARENA_MAX\"))'],\n"
        "                       capture_output=True, text=True).stdout.strip()\n"
        "print(child)\n"
    )
    env = _environment_with_cap(preset)
    arenas = {}
    for mode in ("plain", "lean"):
        done = subprocess.run([sys.executable, "-c", probe, mode], capture_output=True, text=True, env=env, check=True)
        arenas[mode] = done.stderr.count("Arena ")  # malloc_stats: one "Arena N:" block per heap
        inherited = done.stdout.strip()
        assert inherited == (preset or ("2" if mode == "lean" else "None")), (mode, inherited)
    if preset:
        assert max(arenas.values()) <= int(preset), arenas
    else:
        assert arenas["lean"] <= MALLOC_ARENAS < arenas["plain"], arenas


@pytest.mark.parametrize("preset", [None, "2"], ids=["ours", "user-set"])
def test_the_verifying_decoder_runs_without_the_cap_render_set(preset: str | None) -> None:
    """The decoder's threads want heaps of their own: it gets none of lean_heap's cap, but a cap the user set
    (even the same value) stays."""
    probe = ("import json; from voiceguide.host import lean_heap; from voiceguide.export.verify import decoding_env\n"
             "lean_heap(); import os\n"
             "print(json.dumps([os.environ.get('MALLOC_ARENA_MAX'), decoding_env().get('MALLOC_ARENA_MAX')]))\n")
    env = _environment_with_cap(preset)
    ours, decoder = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env,
                                              check=True).stdout)
    assert ours == "2" and decoder == preset
