"""Export: MP3 with exact duration, ID3 tags, ordered chapters, atomic writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import decode
from mutagen.id3 import ID3
from mutagen.mp3 import MP3

from voiceguide.errors import EncoderError, OutputError, VerifyError
from voiceguide.export import Tags, encode, ffmetadata, verify
from voiceguide.timeline import Chapter

RATE = 44100


def tone_chunks(seconds: float) -> list[bytes]:
    value = (3000).to_bytes(2, "little", signed=True) + (-3000).to_bytes(2, "little", signed=True)
    return [value * round(seconds * RATE / 2)]


CHAPTERS = [Chapter("Intro", 0, RATE), Chapter("Lunge (left)", RATE, 3 * RATE), Chapter("Lunge (right)", 3 * RATE, 4 * RATE)]


def test_mp3_duration_tags_and_chapters(tmp_path: Path) -> None:
    out = tmp_path / "s.mp3"
    encode(tone_chunks(4.0), RATE, out, Tags(title="Test session", comment="3 stretches"), CHAPTERS)
    samples = decode(out)
    assert abs(len(samples) / RATE - 4.0) < 0.05
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
    with pytest.raises(EncoderError, match="ffmpeg failed"):
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


def test_failed_verify_keeps_the_previous_file(tmp_path: Path) -> None:
    out = tmp_path / "s.mp3"
    out.write_bytes(b"previous")

    def wrong_length(temp: Path) -> None:
        verify(temp, RATE, 2 * RATE, [])

    with pytest.raises(VerifyError):
        encode(tone_chunks(1.0), RATE, out, Tags(title="x"), [], check=wrong_length)
    assert out.read_bytes() == b"previous" and sorted(p.name for p in tmp_path.iterdir()) == ["s.mp3"]


def test_missing_encoder_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICEGUIDE_FFMPEG", str(tmp_path / "no-such-ffmpeg"))
    with pytest.raises(EncoderError, match="cannot run ffmpeg"):
        encode(tone_chunks(1.0), RATE, tmp_path / "s.mp3", Tags(title="x"), [])
    assert list(tmp_path.iterdir()) == []


def test_failing_encoder_reports_its_last_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\ncat >/dev/null\necho 'line one' >&2\necho 'Unknown encoder libmp3lame' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("VOICEGUIDE_FFMPEG", str(fake))
    out = tmp_path / "out" / "s.mp3"
    with pytest.raises(EncoderError, match=r"ffmpeg failed \(exit 1\): line one \| Unknown encoder libmp3lame"):
        encode(tone_chunks(1.0), RATE, out, Tags(title="x"), [])
    assert list(out.parent.iterdir()) == []
