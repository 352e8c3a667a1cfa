"""Lines synthesized during a render wait in an unnamed temporary file, not in memory (flat memory when cold)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

from voiceguide.audio.clips import SpilledClips
from voiceguide.speech.engine import Clip

RATE = 44100


def clip(n: int, seconds: float = 1.0) -> Clip:
    return Clip(bytes([n % 251, n % 7]) * round(seconds * RATE), RATE)


def test_clips_come_back_exactly_and_leave_no_file_behind(tmp_path: Path) -> None:
    spill = SpilledClips(tmp_path)
    for n in range(6):
        spill[f"line {n}"] = clip(n, 0.5 + n / 10)
    spill["line 2"] = clip(99, 0.25)  # replaced: the new clip is the one read back
    assert list(tmp_path.iterdir()) == []  # the file has no name: nothing to clean up, even after a kill
    assert sorted(spill) == [f"line {n}" for n in range(6)] and len(spill) == 6
    for n in range(6):
        expected = clip(99, 0.25) if n == 2 else clip(n, 0.5 + n / 10)
        assert spill[f"line {n}"] == expected
        assert spill.samples(f"line {n}") == expected.samples
    del spill["line 0"]
    assert "line 0" not in spill and len(spill) == 5
    spill.close()


def test_forty_megabytes_of_speech_cost_no_memory(tmp_path: Path) -> None:
    spill = SpilledClips(tmp_path)
    tracemalloc.start()
    try:
        for n in range(40):
            spill[f"line {n}"] = Clip(bytes([n]) * (1 << 20), RATE)  # 1 MB each, dropped once stored
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 2 << 20, f"{held / 2**20:.1f} MB held for 40 MB of clips"
    assert spill["line 39"].pcm == bytes([39]) * (1 << 20)


def test_a_full_disk_keeps_the_clips_in_memory_and_the_render_goes_on(tmp_path: Path) -> None:
    """A real write failure: the process may write files of at most 3 MB (RLIMIT_FSIZE), the clips need 5."""
    script = textwrap.dedent(f"""
        import resource, signal, sys
        from pathlib import Path
        from voiceguide.audio.clips import SpilledClips
        from voiceguide.speech.engine import Clip
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (3 << 20, 3 << 20))
        spill = SpilledClips(Path({str(tmp_path)!r}))
        clips = {{f"line {{n}}": Clip(bytes([n]) * (1 << 20), {RATE}) for n in range(5)}}
        for text, clip in clips.items():
            spill[text] = clip
        assert all(spill[text] == clip for text, clip in clips.items())
        print("all", len(spill), "read back")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "all 5 read back"  # three fitted in the file, two stayed in memory
