"""Interrupts, full disks and what killed renders leave behind, provoked for real in subprocesses."""

from __future__ import annotations

import os
import resource
import signal
import struct
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "voiceguide.cli", *args]


def _env(cache: Path, temp: Path, mark: str = "") -> dict[str, str]:
    temp.mkdir(exist_ok=True)
    return {**os.environ, "VOICEGUIDE_CACHE_DIR": str(cache), "TMPDIR": str(temp), "VG_TEST_MARK": mark}


def _marked(mark: str) -> list[int]:
    """Every process carrying our mark in its environment: the render, its workers and their children."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if f"VG_TEST_MARK={mark}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _wait_for(condition: Callable[[], bool], process: subprocess.Popen[bytes], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        assert process.poll() is None, f"the render ended before {what}: {process.stderr.read() if process.stderr else ''}"
        time.sleep(0.01)
    raise AssertionError(f"never saw {what}")


def _speaking(temp: Path) -> Callable[[], bool]:
    return lambda: any(temp.glob("voiceguide-speech-*/*.wav"))


# --- Prompt interrupts ------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_during_synthesis_is_prompt_and_leaves_no_process_or_folder(sig: signal.Signals,
                                                                              tmp_path: Path) -> None:
    mark = uuid.uuid4().hex
    temp, out = tmp_path / "tmp", tmp_path / "s.mp3"
    process = subprocess.Popen(_cli("render", "psoas", "-o", str(out)), env=_env(tmp_path / "cache", temp, mark),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for(_speaking(temp), process, "synthesis")  # cold cache: workers are writing clips
    assert len(_marked(mark)) > 1  # the render and its workers
    process.send_signal(sig)
    sent = time.monotonic()
    _, stderr = process.communicate(timeout=60)
    took = time.monotonic() - sent
    assert process.returncode == 130, stderr
    assert stderr.decode().splitlines()[-1] == "interrupted: nothing was written" and b"Traceback" not in stderr
    assert took < 2.0, f"took {took:.1f} s to stop"
    left = _marked(mark)
    info = [(Path(f"/proc/{p}/cmdline").read_bytes(), Path(f"/proc/{p}/stat").read_text()[:60]) for p in left]
    assert left == [], info  # every worker and its children gone with the render
    assert list(temp.iterdir()) == [] and not out.exists()


def test_interrupted_split_render_replaces_none_of_its_files(tmp_path: Path) -> None:
    out = tmp_path / "psoas.mp3"
    previous = {name: f"previous {name}".encode() for name in ("psoas.mp3", "psoas.json", "psoas.m3u",
                                                               "psoas-01-introduction.mp3")}
    for name, data in previous.items():
        (tmp_path / name).write_bytes(data)
    process = subprocess.Popen(_cli("render", "psoas", "--hold", "120", "-q", "--split", "--json", "-o", str(out)),
                               env=_env(tmp_path / "cache", tmp_path / "tmp"), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # The session itself is encoded; now the parts are: a part after the introduction is being written.
    _wait_for(lambda: any(p.stat().st_size > 0 for p in tmp_path.glob(".psoas-0[2-9]-*.part*")), process, "the split")
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and stderr.decode().strip() == "interrupted: nothing was written", stderr
    assert {p.name: p.read_bytes() for p in tmp_path.glob("psoas*")} == previous  # nothing replaced, nothing added
    assert not list(tmp_path.glob(".*"))  # and no temporary file left


def test_interrupt_while_the_file_is_checked_as_it_is_written_leaves_nothing(tmp_path: Path) -> None:
    """Ctrl-C while the MP3 is being encoded and measured as it is written (StreamCheck's ffmpeg following the
    encoder): exit 130, no ffmpeg left running, no copy left in the temporary folder, no output."""
    mark = uuid.uuid4().hex
    temp, out = tmp_path / "tmp", tmp_path / "s.mp3"
    process = subprocess.Popen(_cli("render", "psoas", "--hold", "240", "-q", "-o", str(out)),
                               env=_env(tmp_path / "cache", temp, mark), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for(lambda: any(p.stat().st_size > 0 for p in temp.glob("voiceguide-measure-*/stream.mp3")), process,
              "the file check's first frames")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert stderr.decode().splitlines()[-1] == "interrupted: nothing was written" and b"Traceback" not in stderr
    assert _marked(mark) == []
    assert list(temp.iterdir()) == [] and not out.exists() and not list(tmp_path.glob(".s.mp3*"))


# --- Full disk while tagging --------------------------------------------------------------

def _noisy_png(size: int = 300) -> bytes:
    """A PNG of random pixels (about 270 kB: too big for any padding a tag leaves)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\0" + os.urandom(size * 3) for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A short routine with its speech cached (shared by the formats), and a big cover image."""
    folder = tmp_path_factory.mktemp("warm")
    routine = folder / "short.yaml"
    routine.write_text("name: Short\ndefaults: {hold: 10}\nstretches:\n  - name: Reach\n")
    subprocess.run(_cli("plan", str(routine)), env=_env(folder / "cache", folder / "tmp"), capture_output=True,
                   check=True)
    (folder / "cover.png").write_bytes(_noisy_png())
    return routine, folder


@pytest.mark.parametrize("fmt", ["flac", "ogg", "m4a", "opus"])
def test_full_disk_while_tagging_is_exit_4_and_keeps_the_previous_file(fmt: str, warm: tuple[Path, Path],
                                                                      tmp_path: Path) -> None:
    routine, folder = warm
    env = _env(folder / "cache", tmp_path / "tmp")
    bare = tmp_path / f"bare.{fmt}"
    subprocess.run(_cli("render", str(routine), "-q", "--no-cover", "-o", str(bare)), env=env, check=True,
                   capture_output=True)
    limit = bare.stat().st_size + 20_000  # room for the audio (and chapter tags), none for a 270 kB cover

    def full_disk() -> None:  # this process and its children cannot write a file past ``limit`` bytes
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    out = tmp_path / f"s.{fmt}"
    out.write_bytes(b"the previous session")
    result = subprocess.run(_cli("render", str(routine), "-q", "--cover", str(folder / "cover.png"), "-o", str(out)),
                            env=env, capture_output=True, preexec_fn=full_disk, timeout=120)
    assert result.returncode == 4, result.stderr
    (line,) = result.stderr.decode().splitlines()
    assert line.startswith(f"error: {out}: cannot write: the disk is full or the file is too large")
    assert out.read_bytes() == b"the previous session"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([bare.name, out.name, "tmp"])


# --- Leftovers of killed renders ------------------------------------------------------------

def _kill_while_encoding(out: Path, env: dict[str, str]) -> int:
    process = subprocess.Popen(_cli("render", "psoas", "--hold", "1200", "-q", "-o", str(out)), env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for(lambda: any(p.stat().st_size > 50_000 for p in out.parent.glob(f".{out.name}.*")), process, "encoding")
    process.kill()
    process.communicate()
    return process.pid


def test_leftovers_of_killed_renders_are_cleaned_by_the_next_render_and_cache_clear(tmp_path: Path) -> None:
    cache, temp, out = tmp_path / "cache", tmp_path / "tmp", tmp_path / "session.mp3"
    env = _env(cache, temp)
    # Killed while synthesizing: its speech folder stays behind ...
    process = subprocess.Popen(_cli("render", "psoas", "-q", "-o", str(out)), env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    _wait_for(_speaking(temp), process, "synthesis")
    process.kill()
    process.communicate()
    assert [p.name.startswith(f"voiceguide-speech-{process.pid}-") for p in temp.iterdir()] == [True]
    # ... until the next render; killed in turn while encoding, that one leaves its temporary files.
    killed = _kill_while_encoding(out, env)
    assert not any(temp.glob(f"voiceguide-speech-{process.pid}-*"))
    left = sorted(p.name for p in tmp_path.glob(".session.mp3.*"))
    assert left and all(name.startswith(f".session.mp3.vg{killed}-") for name in left)
    # Things that are not ours, or belong to a live render, are never touched.
    foreign = [tmp_path / ".session.mp3.notours.part", tmp_path / f".session.mp3.vg{os.getpid()}-0123abcd.part",
               tmp_path / ".other.mp3.vg999999999-0123abcd.part", tmp_path / "session.mp3.vg1-0123abcd.part",
               temp / f"voiceguide-speech-{os.getpid()}-abcdefgh"]
    for path in foreign[:-1]:
        path.write_text("not yours")
    foreign[-1].mkdir()
    cleared = subprocess.run(_cli("cache", "clear"), env=env, capture_output=True, text=True, check=True)
    assert f"removed {len(left)} leftovers of interrupted renders" in cleared.stdout
    assert not list(tmp_path.glob(f".session.mp3.vg{killed}-*"))
    assert all(path.exists() for path in foreign)
    # The next render of the same target cleans up after a killed one as well.
    killed = _kill_while_encoding(out, env)
    assert list(tmp_path.glob(f".session.mp3.vg{killed}-*"))
    done = subprocess.run(_cli("render", "desk-break", "-q", "-o", str(out)), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not list(tmp_path.glob(f".session.mp3.vg{killed}-*"))
    assert all(path.exists() for path in foreign)
    assert not list((cache / "renders-in-progress").iterdir())
