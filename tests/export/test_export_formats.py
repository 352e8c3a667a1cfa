"""The format registry: the file name decides the format, and each format's bit rates are checked before any work."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import FakeEngine
from typer.testing import CliRunner

from voiceguide.cli import app
from voiceguide.errors import OptionError
from voiceguide.export.encode import encode
from voiceguide.export.formats import EXTENSIONS, FORMATS, REGISTRY, check_bitrate, choose_format, parse_bitrate
from voiceguide.export.tags import Tags
from voiceguide.pipeline import SessionOptions, default_output, render_session
from voiceguide.routine.builtin import load_builtin
from voiceguide.speech.cache import ClipCache

RATE = 44100
runner = CliRunner()
MAGIC = {"mp3": b"ID3", "m4a": b"ftyp", "ogg": b"vorbis", "opus": b"OpusHead", "flac": b"fLaC", "wav": b"WAVE"}


def silence(seconds: float = 0.5, channels: int = 1) -> list[bytes]:
    return [bytes(2 * channels * round(seconds * RATE))]


class Stereo(list):  # type: ignore[type-arg]
    channels = 2


def test_every_format_is_one_entry_with_its_extensions() -> None:
    assert [f.name for f in REGISTRY] == ["mp3", "m4a", "ogg", "opus", "flac", "wav"]
    for fmt in REGISTRY:
        assert all(EXTENSIONS[ext] is fmt for ext in fmt.extensions) and FORMATS[fmt.name] is fmt
        assert fmt.lossless == (not fmt.bitrate_ranges)
    assert not FORMATS["wav"].holds_chapters and all(f.holds_chapters for f in REGISTRY if f.name != "wav")


@pytest.mark.parametrize("name", ["s.ogg", "s.opus", "s.m4a", "s.flac", "s.wav", "s.mp3", "S.OGG", "s.m4b", "s.oga"])
def test_the_library_writes_the_format_the_file_name_says(name: str, tmp_path: Path) -> None:
    out = tmp_path / name
    result = render_session(load_builtin("desk-break"), out, SessionOptions(loudness=None), engine=FakeEngine(),
                            cache=ClipCache(tmp_path / "clips"))
    fmt = choose_format(out).name
    assert result.fmt == fmt and MAGIC[fmt] in out.read_bytes()[:64]
    assert result.chapters == (() if fmt == "wav" else result.plan.chapters)  # what the file holds


def test_a_contradiction_or_an_unknown_extension_is_refused_before_any_work(tmp_path: Path) -> None:
    engine = FakeEngine()
    routine = load_builtin("desk-break")
    for name, fmt, message in (("x.m4a", "mp3", "--format mp3 contradicts the file's extension '.m4a'"),
                               ("out.xyz", None, "unknown extension '.xyz'"),
                               ("out.xyz", "mp3", "unknown extension '.xyz'"),
                               ("noext", "ogg", "has no extension"),
                               ("s.mp3", "aiff", "unknown format 'aiff'")):
        with pytest.raises(OptionError, match=message) as caught:
            render_session(routine, tmp_path / name, SessionOptions(fmt=fmt), engine=engine)
        assert "mp3 (.mp3), m4a (.m4a/.m4b), ogg" in str(caught.value) or "choose from" in str(caught.value)
    assert engine.calls == [] and list(tmp_path.iterdir()) == []


def test_cli_format_contradiction_is_exit_2_and_nothing_written(tmp_path: Path) -> None:
    for args in (["-o", str(tmp_path / "x.m4a"), "--format", "mp3"], ["-o", str(tmp_path / "out.xyz")]):
        result = runner.invoke(app, ["render", "psoas", *args])
        assert result.exit_code == 2 and result.stderr.startswith("error: ") and "Traceback" not in result.output
        assert "m4a (.m4a/.m4b)" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_format_option_names_the_default_file(tmp_path: Path) -> None:
    assert default_output("Psoas", tmp_path, "opus") == tmp_path / "psoas.opus"
    assert default_output("Psoas", tmp_path) == tmp_path / "psoas.mp3"
    with pytest.raises(OptionError, match="unknown format"):
        default_output("Psoas", tmp_path, "aiff")


@pytest.mark.parametrize("text", ["00k", "0", "", " ", "k", "6.4k", "64kk", "-64k", "1e3", "64 k", "٦٤k", True, 64.0, None])
def test_malformed_bitrates_are_refused(text: object) -> None:
    with pytest.raises(OptionError, match="--bitrate: expected kbit/s"):
        parse_bitrate(text)  # type: ignore[arg-type]


@pytest.mark.parametrize(("fmt", "bitrate", "channels", "message"), [
    ("ogg", "10k", 1, "ogg mono takes 32k to 240k"),
    ("ogg", "241k", 1, "ogg mono takes 32k to 240k"),
    ("ogg", "44k", 2, r"ogg stereo \(with music\) takes 45k to 500k"),
    ("opus", "257k", 1, "opus mono takes 6k to 256k"),
    ("m4a", "265k", 1, "m4a mono takes 8k to 264k"),
    ("mp3", "65k", 1, "mp3 takes one of 32k, 40k"),
    ("mp3", "8k", 1, "mp3 takes one of"),
    ("flac", "64k", 1, "flac is lossless and has no bit rate"),
    ("wav", 128, 2, "wav is lossless"),
])
def test_bitrates_outside_a_formats_range_are_refused(fmt: str, bitrate: str, channels: int, message: str) -> None:
    with pytest.raises(OptionError, match=message):
        check_bitrate(fmt, bitrate, channels)


def test_defaults_are_64k_a_channel_mp3_mono_96k_and_none_for_lossless() -> None:
    assert check_bitrate("mp3", None) == 96 and check_bitrate("mp3", None, 2) == 128
    assert check_bitrate("ogg", None, 2) == 128 and check_bitrate("m4a", None) == 64
    assert check_bitrate("flac", None) is None and check_bitrate("opus", "96K") == 96


@pytest.mark.parametrize("fmt", ["m4a", "ogg", "opus"])
@pytest.mark.parametrize("channels", [1, 2])
def test_the_encoder_takes_both_ends_of_each_range(fmt: str, channels: int, tmp_path: Path) -> None:
    low, high = FORMATS[fmt].bitrate_ranges[channels]
    pcm = Stereo(silence(0.3, 2)) if channels == 2 else silence(0.3)
    for kbps in (low, high):  # the registry's ranges are what the real encoder accepts
        encode(pcm, RATE, tmp_path / f"{kbps}{FORMATS[fmt].extension}", Tags(title="x"), [], bitrate=f"{kbps}k")


def test_just_outside_the_range_the_encoder_itself_fails(tmp_path: Path) -> None:
    """Why the ranges exist: libvorbis refuses 31k mono (before, an encoder failure after all the work)."""
    import subprocess

    from voiceguide.ffmpeg import ffmpeg_exe

    low, _ = FORMATS["ogg"].bitrate_ranges[1]
    command = [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-t", "0.3", "-i", "anoisesrc=r=44100", "-ac", "1",
               "-c:a", "libvorbis", "-b:a", f"{low - 1}k", "-f", "ogg", str(tmp_path / "x.ogg")]
    assert subprocess.run(command, capture_output=True, check=False).returncode != 0


def test_cli_bad_bitrate_is_exit_2_before_any_work(tmp_path: Path) -> None:
    for args in (["-f", "ogg", "--bitrate", "10k"], ["--bitrate", "00k"], ["-f", "wav", "--bitrate", "64k"]):
        started = time.monotonic()
        result = runner.invoke(app, ["render", "psoas", "--output-dir", str(tmp_path), "--no-cache", *args])
        assert result.exit_code == 2 and "--bitrate" in result.stderr and "Traceback" not in result.output
        assert time.monotonic() - started < 5  # refused before speech is synthesized (--no-cache: no shortcut)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("fmt", "chapters"), [("wav", "0 chapters"), ("opus", "9 chapters")])
def test_cli_says_what_was_written_and_verify_passes(fmt: str, chapters: str, tmp_path: Path) -> None:
    """Real engine: a WAV holds no chapters (and says so); an Opus render verifies (before: every one failed)."""
    out = tmp_path / f"psoas.{fmt}"
    result = runner.invoke(app, ["render", "psoas", "-o", str(out), "--verify", "-q"])
    assert result.exit_code == 0, result.output
    assert f"({result.stdout.split('(')[1].split(',')[0]}, {chapters}, verified, voice: espeak)" in result.stdout
