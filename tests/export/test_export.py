"""Export: MP3 with exact duration, ID3 tags, ordered chapters, atomic writes."""

from __future__ import annotations

import base64
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import mutagen
import pytest
from conftest import ctrl_c_once_a_child_sleeps, decode, decoded_length, our_children
from mutagen.id3 import ID3
from mutagen.mp3 import MP3

from voiceguide import ffmpeg
from voiceguide.errors import EncoderError, OptionError, OutputError, VerifyError
from voiceguide.export import verify as verifying
from voiceguide.export.encode import encode
from voiceguide.export.formats import choose_format
from voiceguide.export.mp3 import split_points
from voiceguide.export.tags import Tags, ffmetadata
from voiceguide.export.verify import decoding_env, probe, read_chapters, verify
from voiceguide.ffmpeg import ffmpeg_exe
from voiceguide.plan.timeline import Chapter

RATE = 44100


def tone_chunks(seconds: float) -> list[bytes]:
    value = (3000).to_bytes(2, "little", signed=True) + (-3000).to_bytes(2, "little", signed=True)
    return [value * round(seconds * RATE / 2)]


CHAPTERS = [Chapter("Intro", 0, RATE), Chapter("Lunge (left)", RATE, 3 * RATE), Chapter("Lunge (right)", 3 * RATE, 4 * RATE)]


def test_mp3_duration_tags_and_chapters(tmp_path: Path) -> None:
    out = tmp_path / "s.mp3"
    encode(tone_chunks(4.0), RATE, out, Tags(title="Test session", comment="3 stretches"), CHAPTERS)
    samples = decode(out)
    assert len(samples) == 4 * RATE  # gapless (LAME tag): exactly the samples given
    audio = MP3(out)
    assert audio.info.sample_rate == RATE and audio.info.channels == 1
    tags = ID3(out)
    assert tags.version[:2] == (2, 3)
    assert str(tags["TIT2"]) == "Test session" and str(tags["TPE1"]) == "voiceguide"
    toc = tags.getall("CTOC")[0]
    assert toc.flags & 0x01 and toc.flags & 0x02  # top-level, ordered
    chaps = {c.element_id: c for c in tags.getall("CHAP")}
    ordered = [chaps[i] for i in toc.child_element_ids]
    assert [(c.start_time, c.end_time, str(c.sub_frames["TIT2"])) for c in ordered] == [
        (0, 1000, "Intro"), (1000, 3000, "Lunge (left)"), (3000, 4000, "Lunge (right)")]


def test_metadata_is_escaped_and_sorted() -> None:
    text = ffmetadata(Tags(title="A=B; #1"), list(reversed(CHAPTERS)), RATE)
    assert "title=A\\=B\\; \\#1" in text
    assert text.index("Intro") < text.index("Lunge (left)") < text.index("Lunge (right)")


def test_failed_encode_leaves_previous_file_and_no_partial(tmp_path: Path) -> None:
    out = tmp_path / "s.mp3"
    out.write_bytes(b"previous")
    with pytest.raises(OptionError, match="--bitrate: expected kbit/s"):
        encode(tone_chunks(1.0), RATE, out, Tags(title="x"), [], bitrate="not-a-bitrate")
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.mp3"]


def test_interrupted_encode_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "s.mp3"

    def chunks():  # type: ignore[no-untyped-def]
        yield tone_chunks(1.0)[0]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        encode(chunks(), RATE, out, Tags(title="x"), [])
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match="cannot write the output here"):
        encode(tone_chunks(1.0), RATE, blocker / "s.mp3", Tags(title="x"), [])


def test_verify_reads_back_duration_and_chapters(tmp_path: Path) -> None:
    out = tmp_path / "s.mp3"
    encode(tone_chunks(4.0), RATE, out, Tags(title="x"), CHAPTERS)
    found = verify(out, RATE, 4 * RATE, CHAPTERS)
    assert found.samples == 4 * RATE
    assert [c[2] for c in found.chapters] == [c.title for c in CHAPTERS]
    with pytest.raises(VerifyError, match=r"plan is 3\.500 s"):
        verify(out, RATE, round(3.5 * RATE), CHAPTERS)
    with pytest.raises(VerifyError, match="chapters"):
        verify(out, RATE, 4 * RATE, [*CHAPTERS, Chapter("Extra", 4 * RATE, 4 * RATE)])


@pytest.mark.parametrize("name", ["it's: a, b; [c] d=e\\f.mp3", "pipe:1.mp3", "-x.mp3", "tab\tnewline\n.mp3",
                                  "Dehnübung \u2013 Hüfte.mp3"])
def test_probe_decodes_files_whose_names_mean_something_to_ffmpeg(name: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # probe() names the file inside a filter graph (amovie): quotes, colons, commas, brackets, backslashes and
    # protocol-like names must reach ffmpeg as the file's name. Relative, from the file's folder, as a user types it.
    monkeypatch.chdir(tmp_path)
    out = Path(name)
    encode(tone_chunks(2.0), RATE, tmp_path / "plain.mp3", Tags(title="x"), CHAPTERS[:1])
    (tmp_path / "plain.mp3").rename(tmp_path / name)
    found = probe(out, RATE)
    assert found.samples == 2 * RATE == decoded_length(tmp_path / name)  # the tests' own decode: ffmpeg -i
    assert [c.title for c in found.chapters] == ["Intro"]


def test_probe_reports_a_damaged_file_without_hanging(tmp_path: Path) -> None:
    # A second of tone, then 3000 frames whose headers are valid and whose contents are noise: ffmpeg
    # decodes the first, refuses the rest and says why (-i: 765 KB of messages, far more than a pipe holds).
    out = tmp_path / "s.mp3"
    encode(tone_chunks(1.0), RATE, out, Tags(title="x"), [])
    noise = random.Random(1)
    frame = b"\xff\xfb\x70\xc4" + bytes(noise.randrange(256) for _ in range(309))  # MPEG-1 layer III, 96k
    out.write_bytes(out.read_bytes() + frame * 3000)
    with pytest.raises(VerifyError, match=r"s\.mp3: cannot be decoded: .*(frame|data)"):
        probe(out, RATE)


def _refuses_at_once(tmp_path: Path, reader: Callable[[Path], object], name: str) -> None:
    """``reader`` given a FIFO (opening it would wait for ever for a writer), a device, a folder and a missing
    file: each a VerifyError at once, naming the path and what it is."""
    fifo = tmp_path / "s.mp3"
    os.mkfifo(fifo)
    found: list[BaseException] = []

    def attempt(path: Path) -> None:
        try:
            reader(path)
        except BaseException as exc:  # what the thread saw, for the assertions below
            found.append(exc)

    for path, kind in ((fifo, "a FIFO"), (Path("/dev/zero"), "a device"), (tmp_path, "a folder"),
                       (tmp_path / "none.mp3", "missing")):
        found.clear()
        thread = threading.Thread(target=attempt, args=(path,), daemon=True)
        thread.start()
        thread.join(10)
        assert not thread.is_alive(), f"{name}({path}) hung"
        assert isinstance(found[0], VerifyError) and kind in str(found[0]) and str(path) in str(found[0])


@pytest.mark.parametrize("head", [b"ID3", b"ID3\x03\x00", b"ID3\x03\x00\x00\x00\x00"])
def test_a_file_cut_short_inside_its_id3_header_is_a_verify_error(head: bytes, tmp_path: Path) -> None:
    """A file that starts an ID3 tag and ends within its 10-byte header: no chapters read back (there are
    none), and verify's decoding says the file cannot be decoded; never a ValueError from inside."""
    out = tmp_path / "s.mp3"
    out.write_bytes(head)
    assert read_chapters(out) == ()
    with pytest.raises(VerifyError, match=r"s\.mp3: cannot be decoded"):
        verify(out, RATE, RATE, [], "mp3")


def test_probe_refuses_what_is_not_a_file_at_once(tmp_path: Path) -> None:
    _refuses_at_once(tmp_path, lambda path: probe(path, RATE, "mp3"), "probe")


def test_finding_where_to_cut_a_file_refuses_what_is_not_a_file_at_once(tmp_path: Path) -> None:
    """decoding_cut is public: it checks what it is given before opening it."""
    _refuses_at_once(tmp_path, lambda path: verifying.decoding_cut(path, RATE), "decoding_cut")


def test_reading_chapters_refuses_what_is_not_a_file_at_once(tmp_path: Path) -> None:
    """read_chapters is public: it checks what it is given before opening it."""
    _refuses_at_once(tmp_path, read_chapters, "read_chapters")


def test_verify_refuses_a_fifo_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "s.mp3"
    os.mkfifo(fifo)  # ffmpeg's demuxer, started beside the decoding, would wait for ever for a writer
    found: list[BaseException] = []

    def attempt() -> None:
        try:
            verify(fifo, RATE, RATE, [], "mp3")
        except BaseException as exc:  # what the thread saw, for the assertions below
            found.append(exc)

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "verify of a FIFO hung"
    assert isinstance(found[0], VerifyError) and "a FIFO" in str(found[0])


def _fake_ffmpeg(tmp_path: Path, hang_listing: bool = False, hang_decoding: bool = False) -> Path:
    """A wrapper around the real ffmpeg that logs each call's GLIBC_TUNABLES and arguments; with ``hang_listing``
    the chapter listing (``-f ffmetadata``) hangs instead, with ``hang_decoding`` the decoding (``amovie``)."""
    script = tmp_path / "ffmpeg"
    hang = 'case "$*" in *ffmetadata*) exec sleep 60;; esac\n' if hang_listing else ""
    hang += 'case "$*" in *amovie=*) exec sleep 60;; esac\n' if hang_decoding else ""
    script.write_text(f'#!/bin/sh\n{hang}echo "$GLIBC_TUNABLES|$*" >> "{tmp_path}/calls"\nexec "{ffmpeg_exe()}" "$@"\n')
    script.chmod(0o755)
    return script


def test_the_decoding_ffmpeg_runs_without_fast_bins_and_keeps_the_users_tunables(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert decoding_env({}) == {"GLIBC_TUNABLES": "glibc.malloc.mxfast=0"}
    assert decoding_env({"GLIBC_TUNABLES": "glibc.malloc.tcache_count=0", "LANG": "C"}) == {
        "GLIBC_TUNABLES": "glibc.malloc.tcache_count=0:glibc.malloc.mxfast=0", "LANG": "C"}
    assert decoding_env({"GLIBC_TUNABLES": "glibc.malloc.mxfast=64"}) == {"GLIBC_TUNABLES": "glibc.malloc.mxfast=64"}
    out = tmp_path / "s.mp3"
    encode(tone_chunks(1.0), RATE, out, Tags(title="x"), CHAPTERS[:1])
    monkeypatch.setenv("VOICEGUIDE_FFMPEG", str(_fake_ffmpeg(tmp_path)))
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0")
    verify(out, RATE, RATE, CHAPTERS[:1], "mp3")
    calls = dict(line.split("|", 1)[::-1] for line in (tmp_path / "calls").read_text().splitlines())
    assert len(calls) == 2  # the decoding, and the chapters listed by ffmpeg's demuxer
    decoding = next(args for args in calls if "amovie=" in args)
    listing = next(args for args in calls if "ffmetadata" in args)
    assert calls[decoding] == "glibc.malloc.tcache_count=0:glibc.malloc.mxfast=0"
    assert calls[listing] == "glibc.malloc.tcache_count=0"  # only the decoding is tuned


@pytest.mark.parametrize(("hung", "limit", "message"), [
    ("listing", "LIST_TIMEOUT_S", r"s\.mp3: ffmpeg did not list its chapters within 1 s"),
    ("decoding", "DECODE_STALL_S", r"s\.mp3: ffmpeg stopped decoding \(nothing for 1 s\)"),
])
def test_a_hung_ffmpeg_is_a_verify_error_and_is_stopped(hung: str, limit: str, message: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """An ffmpeg that lists no chapters within LIST_TIMEOUT_S, or decodes nothing at all for DECODE_STALL_S (here
    1 s each; it would sleep for 60), is killed and reaped, and the check is a VerifyError saying so."""
    out = tmp_path / "s.mp3"
    encode(tone_chunks(1.0), RATE, out, Tags(title="x"), CHAPTERS[:1])
    fake = _fake_ffmpeg(tmp_path, hang_listing=hung == "listing", hang_decoding=hung == "decoding")
    monkeypatch.setenv("VOICEGUIDE_FFMPEG", str(fake))
    monkeypatch.setattr(verifying, limit, 1)
    started = time.monotonic()
    with pytest.raises(VerifyError, match=message):
        verify(out, RATE, RATE, CHAPTERS[:1], "mp3")
    assert time.monotonic() - started < 30  # not the hung ffmpeg's 60 s
    assert our_children() == []


@pytest.mark.parametrize("hung", ["listing", "decoding"])
def test_ctrl_c_while_ffmpeg_reads_the_file_leaves_no_ffmpeg_running(hung: str, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "s.mp3"
    encode(tone_chunks(1.0), RATE, out, Tags(title="x"), CHAPTERS[:1])
    fake = _fake_ffmpeg(tmp_path, hang_listing=hung == "listing", hang_decoding=hung == "decoding")
    monkeypatch.setenv("VOICEGUIDE_FFMPEG", str(fake))

    ctrl_c_once_a_child_sleeps()  # once the listing (the decoding done by then), or the decoding, hangs
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        verify(out, RATE, RATE, CHAPTERS[:1], "mp3")
    assert time.monotonic() - started < 30 and our_children() == []


def test_verify_without_a_runnable_ffmpeg_is_a_verify_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "s.mp3"
    encode(tone_chunks(1.0), RATE, out, Tags(title="x"), [])
    monkeypatch.setenv("VOICEGUIDE_FFMPEG", str(tmp_path / "no-ffmpeg"))
    with pytest.raises(VerifyError, match=r"cannot run ffmpeg to check the file \(No such file or directory\): .*no-ffmpeg"):
        verify(out, RATE, RATE, [], "mp3")
    with pytest.raises(VerifyError, match=r"cannot run ffmpeg to check the file"):
        probe(out, RATE, "mp3")


def test_failed_verify_keeps_the_previous_file(tmp_path: Path) -> None:
    out = tmp_path / "s.mp3"
    out.write_bytes(b"previous")

    def wrong_length(temp: Path) -> None:
        verify(temp, RATE, 2 * RATE, [], "mp3")  # the temporary file's name (.part) names no format

    with pytest.raises(VerifyError):
        encode(tone_chunks(1.0), RATE, out, Tags(title="x"), [], check=wrong_length)
    assert out.read_bytes() == b"previous" and sorted(p.name for p in tmp_path.iterdir()) == ["s.mp3"]


def test_missing_encoder_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICEGUIDE_FFMPEG", str(tmp_path / "no-such-ffmpeg"))
    with pytest.raises(EncoderError, match="cannot run ffmpeg"):
        encode(tone_chunks(1.0), RATE, tmp_path / "s.wav", Tags(title="x"), [], fmt="wav")
    assert list(tmp_path.iterdir()) == []


def test_failing_encoder_reports_its_last_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\ncat >/dev/null\necho 'line one' >&2\necho 'Unknown encoder libmp3lame' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("VOICEGUIDE_FFMPEG", str(fake))
    out = tmp_path / "out" / "s.wav"
    with pytest.raises(EncoderError, match=r"ffmpeg failed \(exit 1\): line one \| Unknown encoder libmp3lame"):
        encode(tone_chunks(1.0), RATE, out, Tags(title="x"), [], fmt="wav")
    assert list(out.parent.iterdir()) == []


class Beeps:
    """A PcmSource: short loud beeps at known samples in long digital silence (like a session)."""

    def __init__(self, starts: list[int], total: int, length: int = 2205) -> None:
        self.starts, self.total, self.length = starts, total, length
        self.beep = (12000).to_bytes(2, "little", signed=True) + (-12000).to_bytes(2, "little", signed=True)

    def chunks(self, start: int = 0, end: int | None = None):  # type: ignore[no-untyped-def]
        end = self.total if end is None else end
        samples = bytearray(2 * (end - start))
        for s in self.starts:
            for i in range(max(s, start), min(s + self.length, end)):
                samples[2 * (i - start): 2 * (i - start) + 2] = self.beep[2 * (i % 2): 2 * (i % 2) + 2]
        yield bytes(samples)

    def silences(self) -> list[tuple[int, int]]:
        edges = [0, *(x for s in self.starts for x in (s, s + self.length)), self.total]
        return [(a, b) for a, b in zip(edges[::2], edges[1::2], strict=True) if b > a]


def test_parallel_mp3_parts_join_sample_exact(tmp_path: Path) -> None:
    total = 200 * RATE  # long enough for three parts of at least a minute
    starts = [round(t * RATE) + 7 for t in (1.5, 40.25, 99.99, 170.01, 198.5)]  # cuts fall mid-silence
    source = Beeps(starts, total)
    single, parallel = tmp_path / "one.mp3", tmp_path / "three.mp3"
    # At 64k LAME filters this Nyquist-rate beep's pre-echo to under the 3000 threshold below (at 96k it
    # reaches 3 samples early): the onsets compared are then the beep's own, to 2 samples.
    encode(source, RATE, single, Tags(title="x"), [], jobs=1, bitrate="64k")
    encode(source, RATE, parallel, Tags(title="x"), [], jobs=3, bitrate="64k")
    a, b = decode(single), decode(parallel)
    assert len(a) == len(b) == total
    for start in starts:  # every beep begins at the same sample in both, whatever part it fell in
        first_a = next(i for i in range(start - 200, start + 200) if abs(a[i]) > 3000)
        first_b = next(i for i in range(start - 200, start + 200) if abs(b[i]) > 3000)
        assert first_a == first_b and abs(first_a - start) <= 2
    cuts = split_points(source, RATE, 3)
    assert len(cuts) == 2 and all(c % 1152 == 0 for c in cuts)
    for cut in cuts:  # the joints sit in digital silence, decoded (a cut is at least CUT_MARGIN_SECONDS from sound)
        assert not any(b[cut - RATE // 8 : cut + RATE // 8])


@pytest.mark.parametrize("fmt", ["m4a", "ogg", "opus", "flac", "wav"])
def test_every_format_decodes_to_the_plan_with_its_chapters(fmt: str, tmp_path: Path) -> None:
    out = tmp_path / f"s.{fmt}"
    encode(tone_chunks(4.0), RATE, out, Tags(title="Psoas", comment="3 stretches, 4:00"), CHAPTERS)
    found = probe(out, RATE)
    assert found.samples == (4 * 48000 if fmt == "opus" else 4 * RATE)  # exact, at the rate the file stores
    if fmt == "wav":
        assert found.chapters == ()  # WAV has no chapters players read
        return
    assert [title for _, _, title in found.chapters] == [c.title for c in CHAPTERS]
    for (start, _, _), chapter in zip(found.chapters, CHAPTERS, strict=True):
        assert round(start * 1000) == round(chapter.start * 1000 / RATE)  # to the millisecond
    tags = mutagen.File(out)
    assert tags is not None and "Psoas" in str(tags.tags)
    # The chapter frames themselves, read back with mutagen as well as with ffmpeg's demuxers above.
    if fmt == "m4a":
        titles = [c.title for c in tags.chapters]
    else:
        titles = [tags.tags[f"CHAPTER{i:03d}NAME"][0] for i in range(len(CHAPTERS))]
    assert titles == [c.title for c in CHAPTERS]


def test_format_follows_the_extension(tmp_path: Path) -> None:
    assert choose_format(tmp_path / "a.ogg").name == "ogg" and choose_format(tmp_path / "a.OGG", "ogg").name == "ogg"
    with pytest.raises(OptionError, match="contradicts"):
        choose_format(tmp_path / "a.mp3", "flac")
    with pytest.raises(OptionError, match=r"unknown extension '\.unknown'.*mp3 .*wav"):
        choose_format(tmp_path / "a.unknown")
    with pytest.raises(OptionError, match="--format"):
        choose_format(tmp_path / "a.mp3", "aiff")


@pytest.mark.parametrize("fmt", ["mp3", "m4a", "ogg", "opus", "flac"])
def test_cover_art_is_embedded_where_players_look(fmt: str, tmp_path: Path) -> None:
    from voiceguide.export.cover import draw_cover

    image = draw_cover("Psoas release")
    assert image.startswith(b"\x89PNG\r\n\x1a\n") and image != draw_cover("Desk break")  # drawn per title
    out = tmp_path / f"s.{fmt}"
    encode(tone_chunks(2.0), RATE, out, Tags(title="x", cover=image), CHAPTERS[:1])
    audio = mutagen.File(out)
    assert audio is not None and audio.tags is not None
    if fmt == "mp3":
        found = audio.tags.getall("APIC")[0].data
    elif fmt == "m4a":
        found = bytes(audio.tags["covr"][0])
    elif fmt == "flac":
        found = audio.pictures[0].data
    else:
        from mutagen.flac import Picture

        found = Picture(base64.b64decode(audio.tags["METADATA_BLOCK_PICTURE"][0])).data
    assert found == image


@pytest.mark.parametrize("kbps", ["96k", "64k", "128k"])
def test_long_silences_are_written_as_silent_frames(kbps: str, tmp_path: Path) -> None:
    """Beeps in long digital silence: the silences go into the file as ready-made silent frames (no main data),
    LAME encodes only around the beeps, and the file decodes (ffmpeg, with nothing to complain of) to exactly the
    planned length, every beep at the sample where one LAME stream over all of it puts it, silence as exact zeros,
    and mutagen reads the length the LAME tag promises."""
    import subprocess

    from conftest import ffmpeg_exe

    from voiceguide.export.mp3 import FRAME, segments

    total = 130 * RATE
    starts = [round(t * RATE) + 11 for t in (0.5, 3.25, 30.0, 31.5, 90.0, 129.0)]
    source = Beeps(starts, total)
    parts = segments(source, RATE, 2)
    silent = [(a, b) for a, b, quiet in parts if quiet]
    # Every gap of at least MIN_SILENT_SECONDS past the margins: all but the 1.5 s one (30 -> 31.5 s).
    assert len(silent) == 4 and all(a % FRAME == 0 and b % FRAME == 0 for a, b in silent)
    ours, whole = tmp_path / "ours.mp3", tmp_path / "whole.mp3"
    encode(source, RATE, ours, Tags(title="x"), [], bitrate=kbps, jobs=2)
    encode(source.chunks(), RATE, whole, Tags(title="x"), [], bitrate=kbps)  # a plain stream: LAME encodes it all
    log = subprocess.run([ffmpeg_exe(), "-hide_banner", "-v", "warning", "-i", str(ours), "-f", "null", "-"],
                         capture_output=True, text=True)
    assert log.returncode == 0 and log.stderr == ""
    a, b = decode(ours), decode(whole)
    assert len(a) == len(b) == total
    for start in starts:
        first_a = next(i for i in range(start - 300, start + 300) if abs(a[i]) > 3000)
        first_b = next(i for i in range(start - 300, start + 300) if abs(b[i]) > 3000)
        # This Nyquist-rate beep's pre-echo crosses the threshold a sample or two apart with a fresh encoder at
        # 96k and up (at 64k the crossings are the same); a joint in the wrong place is off by 576 or 1152.
        assert abs(first_a - first_b) <= (0 if kbps == "64k" else 3)
    for low, high in silent:  # the silent frames, and half the margin on each side, decode to exact zeros
        assert not any(a[low - RATE // 8 : high + RATE // 8])
    # The silent frames are in the file: count frames whose side information is all zero.
    data = ours.read_bytes()
    size = 144000 * int(kbps[:-1]) // RATE
    at = data.index(b"Info") - 21  # the LAME tag's frame, after the ID3 tag
    zero = frames = 0
    while at + 4 <= len(data):
        assert data[at] == 0xFF
        length = size + (data[at + 2] >> 1 & 1)
        frames += 1
        zero += not any(data[at + 4 : at + 21])
        at += length
    assert zero >= sum(high - low for low, high in silent) // FRAME
    assert abs(mutagen.File(ours).info.length - total / RATE) < 0.001


@pytest.mark.parametrize("where", ["popen", "returned"])
@pytest.mark.parametrize("nth", [1, 2])  # the decoding's ffmpeg, then the chapter listing's
def test_ctrl_c_just_as_verifys_ffmpeg_starts_leaves_none_running(where: str, nth: int, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ctrl-C that lands while Popen starts ffmpeg, or the moment it returns, before the caller has taken note
    of the process: it is stopped and reaped all the same. (Before, such an ffmpeg ran on, sleeping here, as a
    full test run found by chance.)"""
    from conftest import interrupt_as_ffmpeg_starts

    out = tmp_path / "s.mp3"
    encode(tone_chunks(1.0), RATE, out, Tags(title="x"), CHAPTERS[:1])
    script = tmp_path / "ffmpeg"  # the decoding goes through; the nth ffmpeg started sleeps (as a hung one would)
    script.write_text(f'#!/bin/sh\n[ -e "{tmp_path}/started" ] || {{ : > "{tmp_path}/started"; '
                      f'[ {nth} = 1 ] && exec sleep 60; }}\n[ {nth} = 2 ] && case "$*" in *ffmetadata*) exec sleep 60;;'
                      f' esac\nexec "{ffmpeg_exe()}" "$@"\n')
    script.chmod(0o755)
    monkeypatch.setenv("VOICEGUIDE_FFMPEG", str(script))
    started = interrupt_as_ffmpeg_starts(monkeypatch, where, nth, module=ffmpeg)
    with pytest.raises(KeyboardInterrupt):
        verify(out, RATE, RATE, CHAPTERS[:1], "mp3")
    assert len(started) == nth and all(process.returncode is not None for process in started)
    assert our_children() == []


@pytest.mark.parametrize(("kbps", "rate"), [(96, 44100), (64, 44100), (128, 48000), (32, 32000), (320, 44100)])
def test_silent_frames_made_together_are_the_frames_made_one_by_one_at_the_exact_bit_rate(kbps: int, rate: int) -> None:
    """silent_frames (two ready frames, chosen frame by frame) against silent_frame for each, and the bytes of
    any run of them against the bit rate itself: frames first..last take (last * 144000 * kbps // rate) minus
    (first * 144000 * kbps // rate) bytes, so a stream of them stays at exactly ``kbps`` wherever it starts."""
    from voiceguide.export.mp3 import silent_frame, silent_frames

    header = bytes([0xFF, 0xFB, 0x70, 0xC4])
    size = 144000 * kbps
    for first in (0, 1, 7, 1000, 99_999):
        for count in (0, 1, 5, 300):
            made = silent_frames(header, kbps, rate, first, count)
            assert made == b"".join(silent_frame(header, kbps, rate, first + k) for k in range(count))
            assert len(made) == (first + count) * size // rate - first * size // rate
            assert made.count(b"\xff\xfb") >= count  # a header at the start of every frame
