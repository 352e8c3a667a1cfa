"""Any text-to-speech program run once per line from an argument template."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from voiceguide.errors import SpeechError
from voiceguide.host import usable_cores
from voiceguide.speech.clip import check_wav
from voiceguide.speech.engine import SYNTH_TIMEOUT, VoiceInfo, VoiceSettings, _quote


class CommandEngine:
    """Any text-to-speech program that writes a WAV, run once per line from an argument template.

    The template is a list of arguments; ``{output}`` becomes the WAV path,
    ``{text}`` the line (without it, the line is written to the program's
    stdin, as Piper reads it), and ``{voice}``, ``{rate}`` the voice settings.
    No shell is involved. Lines run in parallel (one per core), each with a
    timeout; a failure, hang or empty WAV is retried once, then reported
    naming the line. Clips are cached like the default engine's, keyed by the
    template and the program's size and modification time.
    """

    name = "command"

    def __init__(self, template: Sequence[str], workers: int | None = None, timeout: float = SYNTH_TIMEOUT) -> None:
        if not template:
            raise ValueError("the command is empty")
        if not any("{output}" in arg for arg in template):
            raise ValueError("the command must contain {output}, where the program writes its WAV")
        self.template = list(template)
        self.workers = workers or usable_cores()
        self.timeout = timeout

    def _program(self) -> Path:
        import shutil

        found = shutil.which(self.template[0])
        if found is None:
            raise SpeechError(f"speech program not found: {self.template[0]} (check --engine-command)")
        return Path(found)

    def identity(self) -> str:
        program = self._program()
        stat = program.stat()
        return "command:" + json.dumps([str(program), stat.st_size, int(stat.st_mtime), self.template[1:]])

    def voices(self) -> list[VoiceInfo]:
        return []

    def synthesize(self, texts: Sequence[str], voice: VoiceSettings, folder: Path,
                   on_done: Callable[[str], None] | None = None) -> dict[str, Path]:
        from concurrent.futures import ThreadPoolExecutor

        program = str(self._program())

        def one(item: tuple[int, str]) -> tuple[str, Path]:
            index, text = item
            path = folder / f"line-{index}.wav"
            error = ""
            for _attempt in range(2):
                error = self._run(program, text, path, voice)
                if not error:
                    if on_done is not None:
                        on_done(text)
                    return text, path
            raise SpeechError(f"speech program failed on line {_quote(text)}: {error}")

        with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(texts)))) as pool:
            return dict(pool.map(one, enumerate(texts)))

    def _run(self, program: str, text: str, path: Path, voice: VoiceSettings) -> str:
        """Run the program for one line; return '' on success or what went wrong."""
        path.unlink(missing_ok=True)
        values = {"output": str(path), "text": text, "voice": voice.id or voice.language or "", "rate": str(voice.rate or "")}
        args = [program] + [_fill(arg, values) for arg in self.template[1:]]
        feed = None if any("{text}" in arg for arg in self.template) else text + "\n"
        try:
            done = subprocess.run(args, input=feed, capture_output=True, text=True, timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired:
            return f"timed out after {self.timeout:g} s"
        except OSError as exc:
            return f"cannot run {program} ({exc.strerror})"
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            return f"exit {done.returncode}: {last}"
        try:
            check_wav(path)
        except SpeechError as exc:
            return str(exc)
        return ""


def _fill(arg: str, values: dict[str, str]) -> str:
    """Replace {output}, {text}, {voice} and {rate}; leave any other braces alone."""
    for key, value in values.items():
        arg = arg.replace("{" + key + "}", value)
    return arg
