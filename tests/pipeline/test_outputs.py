"""What a render writes: never an input or a non-file, never one name twice, all or nothing, with sane permissions."""

from __future__ import annotations

import errno
import os
import socket
import stat
from pathlib import Path

import pytest
from conftest import FakeEngine
from typer.testing import CliRunner

from voiceguide.cli import app
from voiceguide.errors import OptionError, OutputError
from voiceguide.pipeline import BatchItem, SessionOptions, Sidecars, plan_batch, render_many, render_session
from voiceguide.routine.load import parse_routine
from voiceguide.speech.cache import ClipCache

runner = CliRunner()
ROUTINE = "name: Mine\ndefaults: {hold: 10, rest: 2}\nstretches:\n  - name: Reach\n  - name: Fold\n"


def _routine(tmp_path: Path, name: str = "mine.yaml", text: str = ROUTINE) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- Never overwrite an input or a non-file -----------------------------------------------

def test_output_that_is_the_routine_file_is_refused_and_the_routine_kept(tmp_path: Path) -> None:
    routine = _routine(tmp_path)
    for spelled in (routine, tmp_path / "sub" / ".." / "mine.yaml"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        result = runner.invoke(app, ["render", str(routine), "-o", str(spelled), "-q"])
        assert result.exit_code == 2, result.output
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"error: {spelled}: is the routine file ({routine})")
        assert routine.read_text() == ROUTINE


def test_output_that_is_a_music_file_or_the_cover_is_refused(tmp_path: Path) -> None:
    from conftest import write_tone

    from voiceguide.export.cover import draw_cover

    music = tmp_path / "bed.wav"
    write_tone(music, 2.0, 44100)
    cover = tmp_path / "art.png"
    cover.write_bytes(draw_cover("x"))
    before = {p: p.read_bytes() for p in (music, cover)}
    link = tmp_path / "link.wav"
    link.symlink_to(music)
    named = _routine(tmp_path, "named.yaml", "name: N\nmusic: [bed.wav]\ndefaults: {hold: 10}\nstretches:\n  - name: A\n")
    for args, what in (([str(named), "-o", str(music), "-f", "wav"], "a music file"),  # named by the routine
                       (["--music", str(music), "-o", str(music), "-f", "wav"], "a music file"),
                       (["--music", str(link), "-o", str(music), "-f", "wav"], "a music file"),
                       (["--cover", str(cover), "-o", str(cover), "-f", "mp3"], "the cover image")):
        result = runner.invoke(app, ["render", *([] if args[0] == str(named) else ["desk-break"]), "-q", *args])
        assert result.exit_code == 2, result.output
        assert f": is {what} (" in result.stderr and len(result.stderr.splitlines()) == 1
    assert {p: p.read_bytes() for p in (music, cover)} == before


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _socket(path: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()


def _device(path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a /dev/null of our own: never the real one


@pytest.mark.parametrize("make", [_fifo, _socket, _device, Path.mkdir], ids=["fifo", "socket", "device", "folder"])
def test_output_that_is_not_a_regular_file_is_refused_before_any_work(make, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                    fake_engine: FakeEngine, cache: ClipCache) -> None:
    target = tmp_path / "out.mp3"
    make(target)
    kind = stat.S_IFMT(os.lstat(target).st_mode)
    with pytest.raises((OptionError, OutputError), match=r"out\.mp3: is (a directory|not a regular file)"):
        render_session(parse_routine(ROUTINE), target, engine=fake_engine, cache=cache)
    assert stat.S_IFMT(os.lstat(target).st_mode) == kind  # still what it was
    assert fake_engine.calls == []  # refused before any synthesis
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "clips") == ["out.mp3"]


@pytest.mark.parametrize(("output", "flag", "what"), [("x.json", "--json", "JSON plan"), ("x.lrc", "--sidecars", "LRC"),
                                                      ("x.m3u", "--split", "playlist")])
def test_sidecar_named_like_the_output_is_refused(output: str, flag: str, what: str, tmp_path: Path) -> None:
    out = tmp_path / output
    out.write_bytes(b"previous")
    result = runner.invoke(app, ["render", "desk-break", "-o", str(out), "-f", "mp3", flag, "-q"])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {out}: the {what}") and "the session" in line
    assert out.read_bytes() == b"previous" and sorted(p.name for p in tmp_path.iterdir()) == [output]


def test_batch_whose_split_parts_collide_with_another_routine_is_refused_naming_both(tmp_path: Path) -> None:
    first = _routine(tmp_path, "s.yaml", "name: S\ndefaults: {hold: 10}\nstretches:\n  - name: Reach\n")
    second = _routine(tmp_path, "s-02-reach.yaml", "name: Other\ndefaults: {hold: 10}\nstretches:\n  - name: Fold\n")
    out = tmp_path / "out"
    result = runner.invoke(app, ["render", str(first), str(second), "--split", "--output-dir", str(out), "-q"])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {out / 's-02-reach.mp3'}: split part 2 (Reach) of {first} and the session of "
                           f"{second} would both be written here")
    assert not any(out.glob("*.mp3"))  # before any render


def test_batch_outputs_compared_by_identity_not_spelling(tmp_path: Path, fake_engine: FakeEngine,
                                                         cache: ClipCache) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "out")
    routine = parse_routine(ROUTINE)
    items = [BatchItem(routine, tmp_path / "out" / "a.mp3"), BatchItem(routine, tmp_path / "alias" / "a.mp3")]
    with pytest.raises(OptionError, match="would both be written here"):
        plan_batch(items)
    # and a routine file in a batch is never another render's output
    source = _routine(tmp_path / "out", "a.mp3", ROUTINE)
    with pytest.raises(OptionError, match="is the routine file"):
        render_many([BatchItem(routine, tmp_path / "x.mp3", source), BatchItem(routine, source)],
                    engine=fake_engine, cache=cache)
    assert fake_engine.calls == [] and source.read_text() == ROUTINE


# --- Permissions ------------------------------------------------------------------------

def test_new_outputs_honour_the_umask_and_replaced_ones_keep_their_mode(tmp_path: Path, fake_engine: FakeEngine,
                                                                        cache: ClipCache) -> None:
    routine = parse_routine(ROUTINE)
    previous = os.umask(0o027)
    try:
        result = render_session(routine, tmp_path / "new.mp3", engine=fake_engine, cache=cache,
                                extras=Sidecars(json=True, lrc=True))
        for path in (result.output, *result.extras):
            assert stat.S_IMODE(path.stat().st_mode) == 0o640, path
        old = tmp_path / "old.mp3"
        old.write_bytes(b"previous")
        old.chmod(0o604)
        render_session(routine, old, engine=fake_engine, cache=cache)
        assert stat.S_IMODE(old.stat().st_mode) == 0o604 and old.read_bytes()[:3] == b"ID3"
    finally:
        os.umask(previous)


# --- All or nothing -------------------------------------------------------------------

def test_failed_sidecar_replaces_nothing(tmp_path: Path, fake_engine: FakeEngine, cache: ClipCache,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk while writing the last sidecar: the session and the other sidecars keep their old contents."""
    out = tmp_path / "s.mp3"
    names = ("s.mp3", "s.lrc", "s.vtt", "s.json")
    for name in names:
        (tmp_path / name).write_text(f"old {name}")
    real_open = open

    def full_disk(file, mode="r", *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(file).startswith(str(tmp_path / ".s.json.")) and "w" in mode:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", full_disk)
    with pytest.raises(OutputError, match=r"s\.json: cannot write: the disk is full .*nothing was replaced"):
        render_session(parse_routine(ROUTINE), out, engine=fake_engine, cache=cache,
                       extras=Sidecars(lrc=True, vtt=True, json=True))
    monkeypatch.undo()
    assert {name: (tmp_path / name).read_text() for name in names} == {name: f"old {name}" for name in names}
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "clips") == sorted(names)  # no temporaries


def test_split_render_writes_everything_at_once_with_the_library(tmp_path: Path, fake_engine: FakeEngine,
                                                                 cache: ClipCache) -> None:
    result = render_session(parse_routine(ROUTINE), tmp_path / "s.mp3", SessionOptions(), engine=fake_engine,
                            cache=cache, extras=Sidecars(split=True, json=True))
    written = sorted(p.name for p in tmp_path.iterdir() if p.name != "clips")
    assert written == sorted(p.name for p in (result.output, *result.extras))
    assert "s-02-reach.mp3" in written and "s.m3u" in written


# --- Batches with a bad file, --version ---------------------------------------------------

def test_batch_with_a_bad_file_stops_before_any_render_unless_keep_going(tmp_path: Path) -> None:
    folder = tmp_path / "routines"
    folder.mkdir()
    _routine(folder, "a.yaml", "name: A\ndefaults: {hold: 10}\nstretches:\n  - name: Reach\n")
    bad = _routine(folder, "b.yaml", "name: B\nstretches: []\n")
    _routine(folder, "c.yaml", "name: C\ndefaults: {hold: 10}\nstretches:\n  - name: Fold\n")
    out = tmp_path / "out"
    stopped = runner.invoke(app, ["render", str(folder), "--output-dir", str(out), "-q"])
    assert stopped.exit_code == 2
    (line,) = stopped.stderr.splitlines()
    assert line.startswith(f"error: {bad}")
    assert not out.exists()
    going = runner.invoke(app, ["render", str(folder), "--output-dir", str(out), "-q", "--keep-going"])
    assert going.exit_code == 2
    assert sorted(p.name for p in out.iterdir()) == ["a.mp3", "c.mp3"]
    lines = going.stderr.splitlines()
    assert lines[0].startswith(f"error: {bad}") and lines[-1] == "1 of 3 renders failed"


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == "voiceguide 0.1.0\n"
