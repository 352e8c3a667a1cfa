"""speech.shaping against pydub itself: the chain process_clip was written with, byte for byte."""

from __future__ import annotations

import math
import random
import re
from array import array
from pathlib import Path

import pytest

from voiceguide.errors import SpeechError
from voiceguide.speech.clip import _pydub, process_clip
from voiceguide.speech.shaping import SilentLine, shape_speech


def _pydub_chain(pcm: bytes, source_rate: int, rate: int) -> bytes:
    """The pydub operations clip processing was written with (and used until shaping replaced them)."""
    pydub = _pydub()
    segment = pydub.AudioSegment(data=pcm, sample_width=2, frame_rate=source_rate, channels=1)
    lead = pydub.silence.detect_leading_silence(segment, -50.0, chunk_size=1)
    tail = pydub.silence.detect_leading_silence(segment.reverse(), -50.0, chunk_size=1)
    if lead >= len(segment):
        raise SilentLine("only silence")
    segment = segment[lead : len(segment) - tail].set_frame_rate(rate)
    gain = min(-20.0 - segment.dBFS, -1.5 - segment.max_dBFS)
    return bytes(segment.apply_gain(gain).fade_in(5).fade_out(5).raw_data)


def _line(rng: random.Random, source_rate: int) -> bytes:
    """A made-up line: silence, a few bursts of tone and noise at a random level (some loud enough to meet the
    peak ceiling first), low noise near the silence threshold, silence; any number of samples."""
    samples = array("h")
    samples.extend([0] * rng.randrange(0, source_rate // 3))
    level = rng.choice([300, 2000, 9000, 30000])
    for _ in range(rng.randrange(1, 4)):
        pitch = rng.uniform(80, 400)
        for i in range(rng.randrange(source_rate // 50, source_rate // 3)):
            value = level * math.sin(2 * math.pi * pitch * i / source_rate) + rng.gauss(0, level / 20)
            samples.append(max(-32768, min(32767, round(value))))
        samples.extend(rng.randrange(-110, 110) for _ in range(rng.randrange(0, source_rate // 20)))
    samples.extend([0] * rng.randrange(0, source_rate // 3))
    return samples.tobytes()


@pytest.mark.parametrize(("source_rate", "rate"), [(22050, 44100), (16000, 44100), (44100, 44100), (22050, 48000),
                                                   (48000, 44100), (24000, 22050)])
def test_shaping_is_pydubs_chain_byte_for_byte(source_rate: int, rate: int) -> None:
    rng = random.Random(f"{source_rate}-{rate}")
    lengths = set()
    for _ in range(40):
        pcm = _line(rng, source_rate)
        ours = shape_speech(pcm, source_rate, rate)
        assert ours == _pydub_chain(pcm, source_rate, rate)
        lengths.add(len(ours) % (2 * rate // 1000))  # clips ending anywhere within a millisecond were tried
    if rate % 1000:  # (at 48 kHz pydub's slicing ends every clip on a whole millisecond)
        assert len(lengths) > 10


def _shaped_as_pydub(pcm: bytes) -> bool:
    """Assert that shaping a 22,050 Hz line to 44,100 Hz gives pydub's bytes, or SilentLine where pydub finds
    nothing; True if there was a clip to compare."""
    try:
        expected = _pydub_chain(pcm, 22050, 44100)
    except SilentLine:
        with pytest.raises(SilentLine):
            shape_speech(pcm, 22050, 44100)
        return False
    assert shape_speech(pcm, 22050, 44100) == expected
    return True


def test_very_short_and_edge_lines_are_pydubs_too() -> None:
    """Lines of a few samples, shorter than the fades, sound at the very first or last sample."""
    for pcm in (array("h", [20000]).tobytes(), array("h", [0, 0, 20000, 0]).tobytes(),
                array("h", [15000] * 50).tobytes(), array("h", [0] * 300 + [12000] * 90).tobytes(),
                array("h", [32767, -32768] * 400).tobytes(), array("h", [-32768] * 3).tobytes()):
        _shaped_as_pydub(pcm)


def test_lines_about_as_long_as_their_fades_are_pydubs_too() -> None:
    """Shorter than, as long as, a little longer than the two fades together, loud to full scale: the fades take
    samples past the end, and counting from the end, exactly where pydub's slices do."""
    rng = random.Random("fades")
    compared = sum(_shaped_as_pydub(array("h", [rng.choice([32767, -32768, rng.randrange(-32768, 32768)])
                                                 for _ in range(rng.randrange(1, 700))]).tobytes())
                   for _ in range(300))
    assert compared > 250


def _mono_wav(path: Path, samples: list[int], rate: int = 22050) -> Path:
    """A mono 16-bit WAV of ``samples`` at ``rate``, as an engine writes one."""
    import wave

    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(array("h", samples).tobytes())
    return path


def test_a_silent_line_is_a_speech_error_from_clip_processing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = _mono_wav(tmp_path / "quiet.wav", [40, -40] * 5000)  # below -50 dBFS throughout
    with pytest.raises(SpeechError, match="only silence"):
        process_clip(path, 44100)
    with pytest.raises(SilentLine):
        shape_speech(b"", 22050, 44100)


def test_espeak_workers_shape_their_lines_exactly_as_clip_processing_does(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The real engine: each line spoken and shaped in its worker is, byte for byte, the clip processing makes
    of the same line spoken plainly (short lines, and lines long enough to have their pace corrected)."""
    from voiceguide.speech.clip import read_clip
    from voiceguide.speech.engine import VoiceSettings
    from voiceguide.speech.espeak import EspeakEngine

    texts = ["Hold.", "Switch sides.", "Ten", "Ease into a low lunge, back knee down, hips forward, chest tall.",
             "Breathe out slowly and let your front hip sink a little further towards the floor."]
    engine, voice = EspeakEngine(), VoiceSettings(rate=160)
    (tmp_path / "plain").mkdir()
    (tmp_path / "shaped").mkdir()
    plain = engine.synthesize(texts, voice, tmp_path / "plain")
    shaped = engine.synthesize_shaped(texts, voice, tmp_path / "shaped", 44100)
    for text in texts:
        expected = process_clip(plain[text], 44100)
        assert read_clip(shaped[text], 44100) == expected, text
        assert expected.samples > 44100 // 10


@pytest.mark.parametrize("rate", [0, -44100, 44100.0, True, "44100", 10**9])
def test_shaped_synthesis_refuses_a_rate_that_is_not_one(rate: object, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from voiceguide.errors import OptionError
    from voiceguide.speech.engine import VoiceSettings
    from voiceguide.speech.espeak import EspeakEngine

    with pytest.raises(OptionError, match="rate must be a whole number of Hz"):
        EspeakEngine().synthesize_shaped(["Hold."], VoiceSettings(), tmp_path, rate)  # type: ignore[arg-type]


def test_a_shaped_wav_at_another_rate_or_width_is_a_speech_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import wave

    from voiceguide.speech.clip import read_clip

    for name, (channels, width, rate, frames) in {"rate": (1, 2, 22050, b"\x01\x00" * 100),
                                                   "stereo": (2, 2, 44100, b"\x01\x00" * 100),
                                                   "width": (1, 1, 44100, b"\x01" * 100),
                                                   "empty": (1, 2, 44100, b"")}.items():
        path = tmp_path / f"{name}.wav"
        with wave.open(str(path), "wb") as wav:
            wav.setnchannels(channels)
            wav.setsampwidth(width)
            wav.setframerate(rate)
            wav.writeframes(frames)
        with pytest.raises(SpeechError, match="a shaped clip is mono 16-bit at 44100 Hz"):
            read_clip(path, 44100)


@pytest.mark.parametrize(("pcm", "source_rate", "rate", "says"), [
    (b"\x01\x00\x02", 22050, 44100, "bytes of even length (got 3 bytes)"),
    ("text", 22050, 44100, "bytes of even length (got str)"),
    (array("h", [1, 2]), 22050, 44100, "bytes of even length (got array)"),
    (b"\x01\x00" * 100, 0, 44100, "from 1000 to 384000 (got 0)"),
    (b"\x01\x00" * 100, 22050.0, 44100, "(got 22050.0)"),
    (b"\x01\x00" * 100, 22050, 0, "from 8000 to 192000 (got 0)"),
    (b"\x01\x00" * 100, 22050, True, "(got True)"),
    (b"\x01\x00" * 100, 22050, 10**9, "(got 1000000000)"),
])
def test_shaping_misused_says_so_in_our_own_error(pcm: object, source_rate: object, rate: object, says: str) -> None:
    """Misuse through the API is an OptionError naming the function and the value, never audioop.error or
    ZeroDivisionError from inside (both came out before: odd bytes, a rate of 0)."""
    from voiceguide.errors import OptionError
    from voiceguide.speech.shaping import leading_silence_ms

    with pytest.raises(OptionError, match=r"^shape_speech: .*" + re.escape(says)):
        shape_speech(pcm, source_rate, rate)  # type: ignore[arg-type]
    if type(source_rate) is int and source_rate == 22050 and rate == 44100:  # the samples are what is wrong
        with pytest.raises(OptionError, match=r"^leading_silence_ms: .*" + re.escape(says)):
            leading_silence_ms(pcm, 22050)  # type: ignore[arg-type]


@pytest.mark.parametrize("threshold", [float("nan"), float("inf"), 5.0, "-50", None])
def test_a_silence_threshold_that_is_not_a_level_is_an_option_error(threshold: object) -> None:
    from voiceguide.errors import OptionError
    from voiceguide.speech.shaping import leading_silence_ms

    with pytest.raises(OptionError, match="threshold must be a level"):
        leading_silence_ms(b"\x01\x00" * 100, 22050, threshold)  # type: ignore[arg-type]


def test_a_wav_whose_header_claims_no_sample_rate_is_a_speech_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The engine's fault, not the caller's: a SpeechError naming the rate (it was ZeroDivisionError)."""
    path = _mono_wav(tmp_path / "zero.wav", [9000, -9000] * 5000)
    data = bytearray(path.read_bytes())
    assert data[24:28] == (22050).to_bytes(4, "little")  # the fmt chunk's sample rate, where RIFF puts it
    data[24:28] = bytes(4)
    path.write_bytes(bytes(data))
    with pytest.raises(SpeechError, match="WAV at 0 Hz"):
        process_clip(path, 44100)
