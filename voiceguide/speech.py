"""Speech synthesis: engines, clip processing and the content-addressed cache.

Each distinct line is synthesized once per (text, voice, engine version) and
stored, already processed (trimmed, resampled to the session rate, levelled,
faded), in the cache. A render then only reads clips.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import struct
import subprocess
import sys
import tempfile
import threading
import wave
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from voiceguide.errors import SpeechError
from voiceguide.host import NOTE_KINDS, default_cache_dir, usable_cores

CLIP_FORMAT = 1  # bump when clip processing changes, so old cache entries are not reused
SYNTH_TIMEOUT = 30.0  # seconds one line may take before the engine is assumed hung


@dataclass(frozen=True)
class VoiceSettings:
    """Which voice speaks and how; None means the engine's default."""

    id: str | None = None
    language: str | None = None
    rate: int | None = None
    volume: float | None = None
    pitch: int | None = None  # 0-100 where the engine supports it


@dataclass(frozen=True)
class Clip:
    """A processed spoken line: mono 16-bit PCM at ``rate``."""

    pcm: bytes
    rate: int

    @property
    def samples(self) -> int:
        """Length in samples."""
        return len(self.pcm) // 2


@dataclass(frozen=True)
class VoiceInfo:
    """A voice an engine offers."""

    id: str
    name: str
    languages: tuple[str, ...]


class Engine(Protocol):
    """A speech engine: writes one WAV file per text."""

    name: str

    def identity(self) -> str:
        """A string that changes whenever the engine's output could change (for cache keys)."""
        ...

    def synthesize(self, texts: Sequence[str], voice: VoiceSettings, folder: Path,
                   on_done: Callable[[str], None] | None = None) -> dict[str, Path]:
        """Write a WAV for every text into ``folder``; return text -> path. Call ``on_done`` after each line."""
        ...

    def voices(self) -> list[VoiceInfo]:
        """The voices on offer."""
        ...


# --- pyttsx3 (espeak-ng) engine -------------------------------------------------


class _Worker:
    """One speech worker subprocess with a line-based JSON protocol and timeouts."""

    def __init__(self, command: Sequence[str]) -> None:
        self.process = subprocess.Popen(
            list(command),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
        )
        self.replies: queue.Queue[str | None] = queue.Queue()
        assert self.process.stdout is not None
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()
        try:
            hello = self._receive(SYNTH_TIMEOUT)
        except TimeoutError:
            self.close()
            raise SpeechError(f"the speech engine did not start within {SYNTH_TIMEOUT:g} s") from None
        if not hello.get("ok"):
            self.close()
            raise SpeechError(str(hello.get("error", "the speech engine failed to start")))

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.replies.put(line)
        self.replies.put(None)

    def _receive(self, timeout: float) -> dict[str, Any]:
        try:
            line = self.replies.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError from None
        if line is None:
            return {"ok": False, "error": f"the speech engine exited (code {self.process.wait()})"}
        try:
            return dict(json.loads(line))
        except ValueError:  # not our protocol: something in the engine printed to stdout
            return {"ok": False, "error": f"the speech engine answered garbage: {line.strip()[:60]!r}"}

    def request(self, payload: dict[str, Any], timeout: float = SYNTH_TIMEOUT) -> dict[str, Any]:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(payload) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            return {"ok": False, "error": "the speech engine exited"}
        return self._receive(timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream:
                stream.close()


class WorkerEngine:
    """An engine whose lines are spoken by worker processes speaking voiceguide's JSON-lines protocol.

    One worker per core at most, each line with a timeout. A line that hangs,
    fails, or comes back as an empty or unreadable WAV is retried once in a
    fresh worker, then reported as an error naming the line.
    """

    name = "worker"
    command: Sequence[str] = ()

    def __init__(self, workers: int | None = None, timeout: float = SYNTH_TIMEOUT) -> None:
        self.workers = workers or usable_cores()
        self.timeout = timeout

    def identity(self) -> str:
        return self.name

    def voices(self) -> list[VoiceInfo]:
        worker = _Worker(self.command)
        try:
            answer = worker.request({"op": "voices"}, self.timeout)
        except TimeoutError:
            raise SpeechError("the speech engine hung while listing voices") from None
        finally:
            worker.close()
        if not answer.get("ok"):
            raise SpeechError(str(answer.get("error")))
        return [VoiceInfo(v["id"], v["name"], tuple(v["languages"])) for v in answer["voices"]]

    def synthesize(self, texts: Sequence[str], voice: VoiceSettings, folder: Path,
                   on_done: Callable[[str], None] | None = None) -> dict[str, Path]:
        jobs: queue.Queue[tuple[int, str]] = queue.Queue()
        for index, text in enumerate(texts):
            jobs.put((index, text))
        results: dict[str, Path] = {}
        failures: list[SpeechError] = []
        count = max(1, min(self.workers, len(texts)))
        threads = [threading.Thread(target=self._serve, args=(jobs, voice, folder, results, failures, on_done))
                   for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failures:
            raise failures[0]
        return results

    def _speak_once(self, worker: _Worker, text: str, path: Path, voice: VoiceSettings) -> str:
        """Speak one line; return '' on success or what went wrong."""
        path.unlink(missing_ok=True)
        try:
            answer = worker.request({"op": "say", "text": text, "path": str(path), "voice": asdict(voice)},
                                    self.timeout)
        except TimeoutError:
            return f"timed out after {self.timeout:g} s"
        if not answer.get("ok"):
            return str(answer.get("error"))
        try:
            check_wav(path)
        except SpeechError as exc:
            return str(exc)
        return ""

    def _serve(self, jobs: queue.Queue[tuple[int, str]], voice: VoiceSettings, folder: Path,
               results: dict[str, Path], failures: list[SpeechError], on_done: Callable[[str], None] | None) -> None:
        worker: _Worker | None = None
        try:
            while not failures:
                try:
                    index, text = jobs.get_nowait()
                except queue.Empty:
                    return
                path = folder / f"line-{index}.wav"
                error = ""
                for _attempt in range(2):  # one retry in a fresh worker
                    if worker is None:
                        worker = _Worker(self.command)
                    error = self._speak_once(worker, text, path, voice)
                    if not error:
                        results[text] = path
                        if on_done is not None:
                            on_done(text)
                        break
                    worker.close()
                    worker = None
                    if "unknown voice" in error or "no voice for" in error:
                        break  # retrying will not find a voice that does not exist
                if error:
                    failures.append(SpeechError(f"speech engine failed on line {_quote(text)}: {error}"))
        except SpeechError as exc:
            failures.append(exc)
        finally:
            if worker is not None:
                worker.close()


class Pyttsx3Engine(WorkerEngine):
    """The default engine: pyttsx3 over the libespeak-ng bundled by espeakng-loader, in worker processes."""

    name = "pyttsx3"
    command = (sys.executable, "-m", "voiceguide._espeak_worker")

    def identity(self) -> str:
        versions = [installed_version(p) for p in ("pyttsx3", "espeakng-loader")]
        return f"pyttsx3-{versions[0]}+espeak-ng-{versions[1]}"


def installed_version(distribution: str) -> str:
    """A distribution's installed version; SpeechError with the fix if it is not installed.

    Every cache key needs it, so it is read from the ``*.dist-info`` folder name
    beside the package when there is one (importlib.metadata costs ~30 ms of
    start-up), and from importlib.metadata otherwise.
    """
    import importlib.util

    module = distribution.replace("-", "_")
    spec = importlib.util.find_spec(module)
    if spec is not None and spec.origin:
        package_dir = Path(spec.origin).parent
        found = sorted(package_dir.parent.glob(f"{module}-*.dist-info"))
        if len(found) == 1:
            return found[0].name[len(module) + 1 : -len(".dist-info")]
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        raise SpeechError(f"speech engine not installed ({distribution}); run: pip install pyttsx3 espeakng-loader") from None


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


def _quote(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


# --- Clip processing -------------------------------------------------------------

TARGET_RMS_DBFS = -20.0  # level every line to the same loudness
PEAK_CEILING_DBFS = -1.5
SILENCE_DBFS = -50.0
FADE_MS = 5


def _pydub():  # type: ignore[no-untyped-def]
    """Import pydub quietly: it warns at import when no ffmpeg is on PATH, which we never use it for."""
    import warnings

    with warnings.catch_warnings():
        # "Couldn't find ffmpeg" (RuntimeWarning) and audioop's deprecation on 3.12 are both noise here.
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        import pydub
        import pydub.silence
    return pydub


def read_wav(path: Path) -> tuple[bytes, int, int, int]:
    """Read a PCM WAV: (frames, rate, channels, sample width)."""
    try:
        with wave.open(str(path), "rb") as wav:
            return wav.readframes(wav.getnframes()), wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
    except (OSError, EOFError, wave.Error) as exc:
        raise SpeechError(f"the speech engine wrote an unreadable WAV ({exc})") from None


def check_wav(path: Path) -> None:
    """Raise SpeechError unless ``path`` is a readable PCM WAV with some audio in it."""
    frames, _, channels, _ = read_wav(path)
    if not frames or channels < 1:
        raise SpeechError("the speech engine wrote an empty WAV")
    if not frames.strip(b"\x00"):
        raise SpeechError("the speech engine wrote only silence")


def process_clip(path: Path, rate: int) -> Clip:
    """Trim silence, convert to mono 16-bit at ``rate``, level to a common loudness and fade the edges."""
    pydub = _pydub()
    frames, source_rate, channels, width = read_wav(path)
    segment = pydub.AudioSegment(data=frames, sample_width=width, frame_rate=source_rate, channels=channels)
    segment = segment.set_channels(1).set_sample_width(2)
    lead = pydub.silence.detect_leading_silence(segment, silence_threshold=SILENCE_DBFS, chunk_size=1)
    tail = pydub.silence.detect_leading_silence(segment.reverse(), silence_threshold=SILENCE_DBFS, chunk_size=1)
    if lead >= len(segment):
        raise SpeechError("the speech engine produced only silence")
    segment = segment[lead : len(segment) - tail]
    segment = segment.set_frame_rate(rate)
    gain = TARGET_RMS_DBFS - segment.dBFS
    gain = min(gain, PEAK_CEILING_DBFS - segment.max_dBFS)  # never clip
    segment = segment.apply_gain(gain).fade_in(FADE_MS).fade_out(FADE_MS)
    return Clip(segment.raw_data, rate)


# --- Cache ------------------------------------------------------------------------

_MAGIC = b"VGCLIP1\n"
_HEADER = struct.Struct("<8sIQ32s")  # magic, rate, byte length, sha256 of the PCM


class ClipCache:
    """Content-addressed store of processed clips; safe for concurrent renders (atomic renames)."""

    def __init__(self, folder: Path | None = None, enabled: bool = True) -> None:
        self.folder = folder or default_cache_dir()
        self.enabled = enabled
        self.write_failures = 0  # clips that could not be stored (the render still succeeds)

    @staticmethod
    def key(engine_identity: str, voice: VoiceSettings, rate: int, text: str) -> str:
        """The content address of one processed clip."""
        payload = json.dumps([CLIP_FORMAT, engine_identity, asdict(voice), rate, text], sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.clip"

    def get(self, key: str) -> Clip | None:
        """The clip stored under ``key``, or None if absent or corrupt (a corrupt entry is removed)."""
        if not self.enabled:
            return None
        path = self._path(key)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        if len(data) >= _HEADER.size:
            magic, rate, length, digest = _HEADER.unpack_from(data)
            pcm = data[_HEADER.size :]
            if magic == _MAGIC and len(pcm) == length and hashlib.sha256(pcm).digest() == digest:
                return Clip(pcm, rate)
        path.unlink(missing_ok=True)  # truncated or corrupt: regenerate
        return None

    def length(self, key: str) -> int | None:
        """The stored clip's length in samples, reading only its header (for quick plans)."""
        if not self.enabled:
            return None
        try:
            with open(self._path(key), "rb") as handle:
                header = handle.read(_HEADER.size)
        except OSError:
            return None
        if len(header) < _HEADER.size or header[:8] != _MAGIC:
            return None
        return int(_HEADER.unpack(header)[2]) // 2

    def put(self, key: str, clip: Clip) -> None:
        """Store a clip atomically (write a temporary file, then rename).

        The cache only saves time: if it cannot be written (full disk, read-only
        folder) the render goes on without it.
        """
        if not self.enabled:
            return
        path = self._path(key)
        header = _HEADER.pack(_MAGIC, clip.rate, len(clip.pcm), hashlib.sha256(clip.pcm).digest())
        temp: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".clip")
            with os.fdopen(fd, "wb") as handle:
                handle.write(header + clip.pcm)
            os.replace(temp, path)
            temp = None
        except OSError:
            self.write_failures += 1
        finally:
            if temp is not None:
                Path(temp).unlink(missing_ok=True)

    def info(self) -> tuple[int, int]:
        """(number of clips, total bytes) in the cache."""
        files = list(self.folder.glob("*/*.clip")) if self.folder.exists() else []
        return len(files), sum(f.stat().st_size for f in files)

    def clear(self) -> int:
        """Remove every cached clip (and the remembered routines, gains and music measurements); return the clips removed."""
        files = list(self.folder.glob("*/*.clip")) if self.folder.exists() else []
        for f in files:
            f.unlink(missing_ok=True)
        for folder in NOTE_KINDS:
            for f in (self.folder / folder).glob("*.json") if (self.folder / folder).exists() else []:
                f.unlink(missing_ok=True)
        return len(files)


# --- The synthesis stage -----------------------------------------------------------


def synthesize(texts: Iterable[str], voice: VoiceSettings, engine: Engine, cache: ClipCache,
               rate: int, progress: Callable[[int, int], None] | None = None) -> dict[str, Clip]:
    """Return a processed clip for every distinct text, synthesizing only what the cache lacks.

    ``progress(done, total)`` is called as lines become available (cached ones at once).
    """
    identity = engine.identity()
    wanted = list(dict.fromkeys(texts))
    clips: dict[str, Clip] = {}
    missing: list[str] = []
    for text in wanted:
        clip = cache.get(cache.key(identity, voice, rate, text))
        if clip is None:
            missing.append(text)
        else:
            clips[text] = clip
    done = [len(clips)]
    lock = threading.Lock()

    def line_done(_text: str) -> None:
        with lock:  # engines call this from their worker threads
            done[0] += 1
            if progress is not None:
                progress(done[0], len(wanted))

    if progress is not None:
        progress(done[0], len(wanted))
    if missing:
        with tempfile.TemporaryDirectory(prefix="voiceguide-speech-") as folder:
            paths = engine.synthesize(missing, voice, Path(folder), on_done=line_done)
            for text in missing:
                try:
                    clip = process_clip(paths[text], rate)
                except SpeechError as exc:
                    raise SpeechError(f"speech for line {_quote(text)}: {exc}") from None
                cache.put(cache.key(identity, voice, rate, text), clip)
                clips[text] = clip
    return clips


def cached_lengths(texts: Iterable[str], voice: VoiceSettings, engine: Engine, cache: ClipCache,
                   rate: int) -> dict[str, int]:
    """Lengths (in samples) of the texts already in the cache, read from headers only."""
    identity = engine.identity()
    found: dict[str, int] = {}
    for text in dict.fromkeys(texts):
        length = cache.length(cache.key(identity, voice, rate, text))
        if length is not None:
            found[text] = length
    return found
