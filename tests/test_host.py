"""The host module: what the render asks of the machine."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest


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
