"""The file check decodes a long MP3 in two halves at once: the length it finds is what one decoder finds."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest
from conftest import FakeEngine, ctrl_c_once_a_child_sleeps, decoded_length, our_children

from voiceguide.errors import VerifyError
from voiceguide.export import verify as verifying
from voiceguide.export.mp3frames import frame_size
from voiceguide.export.verify import decoding_cut, probe, verify
from voiceguide.pipeline import render_session
from voiceguide.plan.timeline import Plan
from voiceguide.routine.builtin import load_builtin
from voiceguide.speech.cache import ClipCache

RATE = 44100


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Plan]:
    """A 7-minute session as a render writes it (speech, silent frames, parts encoded apart), and its plan."""
    folder = tmp_path_factory.mktemp("halves")
    result = render_session(load_builtin("psoas"), folder / "psoas.mp3", engine=FakeEngine(),
                            cache=ClipCache(folder=folder / "cache"))
    return result.output, result.plan


def _copy(session: tuple[Path, Plan], tmp_path: Path) -> Path:
    copy = tmp_path / "s.mp3"
    copy.write_bytes(session[0].read_bytes())
    return copy


def _tag_field(path: Path, name: str) -> int:
    """Where the LAME tag of ``path`` (a mono file we wrote) keeps ``name``: the frame count or the two pads."""
    data = path.read_bytes()
    xing = data.index(b"Info")
    return xing + 8 if name == "frames" else xing + 16 + 100 + 9 + 1 + 1 + 4 + 2 + 2 + 1 + 1


def _sleeping_ffmpeg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ffmpeg a stand-in that decodes nothing (sleeps with its outputs open), its arguments in ``args``."""
    script = tmp_path / "ffmpeg"
    script.write_text(f'#!/bin/sh\necho "$*" > "{tmp_path}/args"\nexec sleep 60\n')
    script.chmod(0o755)
    monkeypatch.setenv("VOICEGUIDE_FFMPEG", str(script))


def test_a_long_mp3_is_decoded_in_halves_to_exactly_what_one_decoder_finds(session: tuple[Path, Plan]) -> None:
    path, plan = session
    cut = decoding_cut(path, RATE)
    assert cut is not None and cut.size == path.stat().st_size
    assert cut.tag.audio_at < cut.at < cut.size  # inside the audio frames, a frame's start ...
    data = path.read_bytes()
    assert frame_size(data[cut.at : cut.at + 4]) and data[cut.at + 4] == 0 and data[cut.at + 5] < 0x80  # ... that borrows nothing
    assert abs(cut.at - (cut.tag.audio_at + cut.size) / 2) < cut.size / 10  # near the middle
    found = probe(path, RATE)
    assert found.samples == plan.total == decoded_length(path)  # the tests' own decode: ffmpeg -i, whole


def test_one_core_or_a_short_file_is_decoded_whole(session: tuple[Path, Plan], monkeypatch: pytest.MonkeyPatch) -> None:
    path, plan = session
    monkeypatch.setattr(verifying, "usable_cores", lambda: 1)
    assert decoding_cut(path, RATE) is None
    assert probe(path, RATE).samples == plan.total
    monkeypatch.undo()
    monkeypatch.setattr(verifying, "PARTS_MIN_SECONDS", plan.total // RATE + 1)
    assert decoding_cut(path, RATE) is None
    assert decoding_cut(path, 48000) is None  # not the rate the file holds: decoded whole (and resampled)


@pytest.mark.parametrize(("field", "value"), [
    ("pads", (576 << 12) | 0), ("pads", (576 << 12) | 300), ("pads", (576 << 12) | 529), ("pads", (576 << 12) | 530),
    ("pads", (576 << 12) | 1700), ("pads", (576 << 12) | 4095), ("pads", (1000 << 12) | 2000),
    ("frames", -3), ("frames", +2),
])
def test_the_halves_count_what_ffmpeg_counts_whatever_the_tag_says(field: str, value: int, session: tuple[Path, Plan],
                                                                   tmp_path: Path) -> None:
    """A tag asking for other delays, or counting frames the file does not have: the two halves still add up to
    what ffmpeg decodes from the whole file (the padding it drops at the end may span frames, or none)."""
    path = _copy(session, tmp_path)
    data = bytearray(path.read_bytes())
    at = _tag_field(path, field)
    if field == "frames":
        data[at : at + 4] = (int.from_bytes(data[at : at + 4], "big") + value).to_bytes(4, "big")
    else:
        data[at : at + 3] = value.to_bytes(3, "big")
    path.write_bytes(data)
    assert decoding_cut(path, RATE) is not None
    assert probe(path, RATE).samples == decoded_length(path)


def test_a_file_that_is_not_what_its_tag_counts_is_decoded_whole(session: tuple[Path, Plan], tmp_path: Path) -> None:
    path = _copy(session, tmp_path)
    data = bytearray(path.read_bytes())
    at = _tag_field(path, "frames") + 4  # the byte count, after the frame count
    data[at : at + 4] = (int.from_bytes(data[at : at + 4], "big") - 1152).to_bytes(4, "big")
    path.write_bytes(data)
    assert decoding_cut(path, RATE) is None
    assert probe(path, RATE).samples == decoded_length(path) == session[1].total


def test_damage_in_the_second_half_is_found(session: tuple[Path, Plan], tmp_path: Path) -> None:
    path = _copy(session, tmp_path)
    data = bytearray(path.read_bytes())
    cut = decoding_cut(path, RATE)
    assert cut is not None
    noise, at = random.Random(3), cut.at + (cut.size - cut.at) // 2
    for _ in range(10):  # ten frames from three quarters of the way on: their contents replaced by noise
        at = data.index(b"\xff\xfb", at + 10)
        data[at + 4 : at + 200] = bytes(noise.randrange(256) for _ in range(196))
    path.write_bytes(data)
    with pytest.raises(VerifyError, match=r"s\.mp3: cannot be decoded: "):
        verify(path, RATE, session[1].total, session[1].chapters)


def test_decoding_in_halves_leaves_no_pipe_open_when_it_hangs_or_cannot_start(session: tuple[Path, Plan], tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    path = _copy(session, tmp_path)
    before = sorted(os.listdir("/proc/self/fd"))
    probe(path, RATE)
    assert sorted(os.listdir("/proc/self/fd")) == before
    _sleeping_ffmpeg(tmp_path, monkeypatch)
    monkeypatch.setattr(verifying, "DECODE_STALL_S", 1)
    started = time.monotonic()
    with pytest.raises(VerifyError, match=r"s\.mp3: ffmpeg stopped decoding \(nothing for 1 s\)"):
        probe(path, RATE)
    assert time.monotonic() - started < 30 and our_children() == []
    assert (tmp_path / "args").read_text().count("subfile") == 2  # it was the decoding in halves that hung
    assert sorted(os.listdir("/proc/self/fd")) == before
    monkeypatch.setenv("VOICEGUIDE_FFMPEG", str(tmp_path / "no-ffmpeg"))
    with pytest.raises(VerifyError, match=r"cannot run ffmpeg to check the file \(No such file or directory\)"):
        probe(path, RATE)
    assert sorted(os.listdir("/proc/self/fd")) == before  # the pipe made for the second half is closed too


def _frame(borrowed: int, padded: bool = False, seed: int = 0) -> bytes:
    """A mono MPEG-1 Layer III frame at 96 kbit/s, 44.1 kHz, whose main data begins ``borrowed`` bytes back; its
    data is noise with a false header (of a frame that borrows nothing) 50 bytes in."""
    header = bytes([0xFF, 0xFB, 0x70 | (0x02 if padded else 0), 0xC4])
    side = bytes([borrowed >> 1, (borrowed & 1) << 7])
    noise = random.Random(seed)
    data = bytearray(noise.randrange(256) for _ in range(144000 * 96 // 44100 + padded - 6))
    data[50:56] = b"\xff\xfb\x70\xc4\x00\x00"
    return header + side + bytes(data)


@pytest.mark.parametrize("junk", [b"", b"\x00\xff\xfb\x70\xc4\x00\x00", b"\xff" * 7])
def test_the_cut_is_the_first_frame_that_borrows_nothing(junk: bytes, tmp_path: Path) -> None:
    """Frames whose data holds what looks like headers, behind bytes that start a false one: the cut is the first
    real frame boundary whose frame borrows no bits from before it, never a false header inside a frame."""
    from voiceguide.export.mp3frames import independent_frame

    frames = [_frame(b, k == 1, k) for k, b in enumerate([9, 300, 1, 0, 0, 4, 2, 6])]
    path = tmp_path / "frames"
    path.write_bytes(junk + b"".join(frames))
    with path.open("rb") as handle:
        cut = independent_frame(handle, 0, path.stat().st_size, frames[0][:4])
    assert cut == len(junk) + sum(map(len, frames[:3]))
    path.write_bytes(junk + b"".join(frames[:3] + frames[5:]))  # none borrows nothing
    with path.open("rb") as handle:
        assert independent_frame(handle, 0, path.stat().st_size, frames[0][:4]) is None


def test_ctrl_c_while_decoding_in_halves_leaves_no_ffmpeg_and_no_pipe(session: tuple[Path, Plan], tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = _copy(session, tmp_path)
    before = sorted(os.listdir("/proc/self/fd"))
    _sleeping_ffmpeg(tmp_path, monkeypatch)

    ctrl_c_once_a_child_sleeps()  # once the decoding hangs
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        probe(path, RATE)
    assert time.monotonic() - started < 30 and our_children() == []
    assert sorted(os.listdir("/proc/self/fd")) == before


@pytest.mark.parametrize("name", ["it's: a, b; [c] d=e\\f.mp3", "x,,:y.mp3", "pipe:1.mp3", "-x.mp3", "%41%2C.mp3",
                                  "tab\tnewline\n.mp3", "Dehnübung \u2013 Hüfte.mp3"])
def test_halves_of_files_whose_names_mean_something_to_ffmpeg(name: str, session: tuple[Path, Plan], tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Each half is a byte range (ffmpeg's subfile protocol) of the file named inside a filter graph: commas,
    colons, the subfile options' own separator and percent signs must reach it as the file's name. Relative,
    from the file's folder, as a user types it."""
    monkeypatch.chdir(tmp_path)
    _copy(session, tmp_path).rename(tmp_path / name)
    assert decoding_cut(Path(name), RATE) is not None
    assert probe(Path(name), RATE).samples == session[1].total
