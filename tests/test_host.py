"""The host module: what the render asks of the machine."""

from __future__ import annotations

import platform
import signal
import subprocess
import sys
import threading
import time

import pytest

from voiceguide.host import interrupts_held


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
