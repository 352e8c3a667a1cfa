"""The command engine (any TTS program): bounded memory, one timeout for a hung program, no orphans, no re-substitution."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from processes import all_gone

from voiceguide.errors import OptionError, SpeechError
from voiceguide.speech.cache import ClipCache
from voiceguide.speech.command import CommandEngine, fill_placeholders
from voiceguide.speech.engine import VoiceSettings
from voiceguide.speech.synth import synthesize

SCRIPTED_TTS = Path(__file__).with_name("scripted_tts.py")
TEMPLATE = [sys.executable, str(SCRIPTED_TTS), "{output}", "{text}"]


def test_a_chatty_program_costs_no_memory_and_its_last_stderr_line_is_the_reason(tmp_path: Path) -> None:
    """300 MB on stdout and 60 MB on stderr: neither is collected (before: all of it, as text, in memory)."""
    script = (
        "import sys\nfrom pathlib import Path\n"
        "from voiceguide.speech.command import CommandEngine\nfrom voiceguide.speech.engine import VoiceSettings\n"
        "from voiceguide.errors import SpeechError\n"
        f"engine = CommandEngine({TEMPLATE!r}, workers=1)\n"
        "try:\n    engine.synthesize(['chatty line'], VoiceSettings(), Path(sys.argv[1]))\n"
        "except SpeechError as exc:\n    print(exc)\n"
        # Its own peak: the kernel starts a child's ru_maxrss at its parent's peak (fork, then exec), so
        # rusage would report pytest's memory; the high-water mark of this process's own memory does not.
        "print([line for line in open('/proc/self/status') if line.startswith('VmHWM:')][0])\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    message, peak = child.communicate()[0].strip().rsplit("\n", 1)
    assert child.returncode == 0
    assert "'chatty line'" in message and message.strip().endswith("exit 1: last words")
    kilobytes = int(peak.split()[1])
    assert kilobytes < 150 * 1024, f"peak memory {kilobytes // 1024} MB"


def test_a_hung_program_costs_one_timeout_and_leaves_no_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 cache: ClipCache) -> None:
    """Eight lines of a program that hangs (and starts a child): one line's timeout and retry, then everything stops.

    Before: every line waited for its own timeout and retry, and each run's child was left running.
    """
    monkeypatch.setenv("SCRIPTED_TTS_PIDS", str(tmp_path))
    engine = CommandEngine(TEMPLATE, workers=2, timeout=1.5)
    started = time.monotonic()
    with pytest.raises(SpeechError, match=r"line 'hang \d'.*timed out after 1.5 s"):
        synthesize([f"hang {n}" for n in range(8)], VoiceSettings(), engine, cache, 44100)
    elapsed = time.monotonic() - started
    assert elapsed < 2 * 1.5 + 2.0, f"took {elapsed:.1f} s"  # before: 8 lines x 2 attempts x 1.5 s / 2 = 12 s
    pids = [int(pid) for f in tmp_path.iterdir() if f.name.isdigit() for pid in f.read_text().split()]
    assert len(pids) >= 4  # both workers ran the program twice, each with a child
    assert all_gone(pids), "a program or its child outlived the synthesis"
    assert cache.info()[0] == 0


def test_text_is_never_substituted_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: ClipCache) -> None:
    """A line that contains {rate}, {voice} or {output} reaches the program as written (before: as 150, ...)."""
    record = tmp_path / "args.jsonl"
    monkeypatch.setenv("SCRIPTED_TTS_ARGS", str(record))
    text = "Breathe at {rate}, in {voice}, to {output} and {text}."
    template = [sys.executable, str(SCRIPTED_TTS), "{output}", "{text}", "--rate={rate}", "{voice}", "{other}"]
    synthesize([text], VoiceSettings(rate=150, language="en-us"), CommandEngine(template), cache, 44100)
    (args,) = [json.loads(line) for line in record.read_text().splitlines()]
    assert args[1:] == [text, "--rate=150", "en-us", "{other}"]
    assert fill_placeholders("{text}{rate}", {"text": "{rate}", "rate": "9", "output": "", "voice": ""}) == "{rate}9"


def test_a_clip_far_longer_than_its_text_is_an_engine_fault(cache: ClipCache) -> None:
    """30 s of 'speech' for two words: spoken again, then an engine fault, and never cached."""
    with pytest.raises(SpeechError, match=r"line 'long line'.*30.0 s of speech for 2 words"):
        synthesize(["long line"], VoiceSettings(), CommandEngine(TEMPLATE), cache, 44100)
    assert cache.info()[0] == 0


@pytest.mark.parametrize("template", [[], ["  "], ["piper", "--model", "x.onnx"]])
def test_a_bad_template_is_an_option_error(template: list[str]) -> None:
    with pytest.raises(OptionError, match="engine command"):
        CommandEngine(template)
