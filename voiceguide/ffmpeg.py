"""The ffmpeg binary (from the imageio-ffmpeg wheel) and a helper that feeds it PCM.

Used by every stage that decodes, measures or encodes, so it sits below them all.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from voiceguide.errors import EncoderError, VoiceguideError
from voiceguide.host import interrupts_held

# A decoder hands on samples many times a second: this long without any means it hangs (stopped, or reading a
# file system that no longer answers), and it is stopped rather than waited for (verify, the music bed).
DECODE_STALL_S = 60
PIPE_BYTES = 1 << 20  # what widen_pipe asks for: Linux's limit for a user (/proc/sys/fs/pipe-max-size) by default


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary to use."""
    override = os.environ.get("VOICEGUIDE_FFMPEG")
    if override:
        return override
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        found = shutil.which("ffmpeg")
        if found:
            return found
    raise EncoderError("no ffmpeg found; run: pip install imageio-ffmpeg (or install ffmpeg)")


# Inside a filter graph a value is unescaped twice: once as the graph is split into filters, once as a
# filter's arguments are split into options. A backslash before any character keeps it literal at each level.
_FILTER_SPECIAL = re.compile(r"[^A-Za-z0-9/._\x80-\U0010ffff-]")


def filter_graph_path(path: str | os.PathLike[str]) -> str:
    """``path`` as a file name inside an ffmpeg filter graph (``amovie=filename=...``): absolute, read through
    the ``file:`` protocol whatever the name looks like, every ASCII character that is not a letter, digit or
    one of ``/._-`` escaped for both levels of ffmpeg's filter-graph syntax (quotes, colons, commas, brackets,
    spaces and backslashes included)."""
    return filter_graph_text(file_url(path))


def file_url(path: str | os.PathLike[str]) -> str:
    """``path`` as an ffmpeg URL that the file protocol reads whatever the name looks like (``pipe:1``, ``-x``)."""
    return "file:" + str(Path(path).absolute())


def filter_graph_text(value: str) -> str:
    """``value`` (a URL, say) as text inside an ffmpeg filter graph: every ASCII character that is not a letter,
    digit or one of ``/._-`` escaped for both levels of the filter-graph syntax (see filter_graph_path)."""
    for _level in range(2):
        value = _FILTER_SPECIAL.sub(lambda found: "\\" + found[0], value)
    return value


def widen_pipe(stream: IO[bytes] | None, size: int = PIPE_BYTES) -> int | None:
    """Make the pipe behind ``stream`` hold ``size`` bytes (Linux), so a writer and a reader working at uneven
    paces wait for each other less; return the size it holds, or None where that cannot be changed (another
    system, a limit reached: the pipe keeps its size and only the waiting is longer)."""
    import fcntl

    setting = getattr(fcntl, "F_SETPIPE_SZ", None)
    if stream is None or setting is None:
        return None
    try:
        return int(fcntl.fcntl(stream.fileno(), setting, size))
    except OSError:
        return None


def run_ffmpeg(command: list[str], chunks: Iterable[bytes], log: IO[bytes]) -> int:
    """Run ffmpeg with ``chunks`` on its stdin and its messages going to ``log``; return its exit code.

    Interrupted (Ctrl-C, SIGTERM) or failing on our side, ffmpeg is killed, never left running.
    """
    process: subprocess.Popen[bytes] | None = None
    try:
        with interrupts_held():  # an interrupt as it starts: raised once it is known here, so it is stopped
            try:
                process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log)
            except OSError as exc:
                raise EncoderError(f"cannot run ffmpeg ({exc.strerror}): {command[0]}") from None
        assert process.stdin is not None
        for chunk in chunks:
            process.stdin.write(chunk)
        process.stdin.close()
    except BrokenPipeError:
        pass  # ffmpeg stopped early; its log says why
    except BaseException:
        if process is not None:
            stop_ffmpeg(process)
        raise
    assert process is not None
    return process.wait()


def start_ffmpeg(command: Sequence[str], log: IO[bytes] | int, *, stdout: IO[bytes] | int = subprocess.DEVNULL,
                 env: Mapping[str, str] | None = None, error: type[VoiceguideError] = EncoderError,
                 doing: str = "", pass_fds: Sequence[int] = ()) -> subprocess.Popen[bytes]:
    """Start ffmpeg with no input, its messages going to ``log`` and its output to ``stdout`` (unbuffered: read
    from the pipe itself), in ``env`` if given, with ``pass_fds`` open in it too (``pipe:N`` outputs); ``error`` if
    it cannot be run, saying what it was for (``doing``). Start it under host.interrupts_held and take note of it
    there, or use running_ffmpeg: a Ctrl-C as Popen returns would otherwise leave it running, known to no one."""
    try:
        return subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=stdout, stderr=log, env=env, bufsize=0,
                                pass_fds=tuple(pass_fds))
    except OSError as exc:
        raise error(f"cannot run ffmpeg{' ' + doing if doing else ''} ({exc.strerror}): {command[0]}") from None


@contextlib.contextmanager
def running_ffmpeg(command: Sequence[str], log: IO[bytes] | int, *, pass_fds: Sequence[int] = (),
                   **options: Any) -> Iterator[subprocess.Popen[bytes]]:
    """start_ffmpeg (with ``options``) for the length of a block, never left running: an exception or an
    interrupt, in the block or as ffmpeg starts, kills and reaps it; a block that ends well waits for it. Its
    pipes are closed at the end. ``pass_fds`` are handed over: closed here once ffmpeg holds them (or failed to
    start), so each pipe ends when ffmpeg closes its end."""
    process: subprocess.Popen[bytes] | None = None
    try:
        with interrupts_held():  # an interrupt as it starts: raised once the process is known here, so it is stopped
            try:
                process = start_ffmpeg(command, log, pass_fds=pass_fds, **options)
            finally:
                for fd in pass_fds:
                    os.close(fd)
        yield process
    except BaseException:
        if process is not None:
            stop_ffmpeg(process)
        raise
    else:
        process.wait()
    finally:
        if process is not None and process.stdout is not None:
            process.stdout.close()


def stop_ffmpeg(process: subprocess.Popen[bytes]) -> None:
    """Kill ``process`` if it still runs, and reap it: after a timeout or an interrupt none is left behind."""
    if process.poll() is None:
        process.kill()
    process.wait()


def run_ffmpeg_together(commands: Sequence[Sequence[str]], logs: Sequence[IO[bytes]]) -> list[int]:
    """Run several ffmpeg commands at once (no input), each logging to its own file; return their exit codes.

    Interrupted or failing on our side, every one still running is killed, never left behind.
    """
    with contextlib.ExitStack() as running:
        processes = [running.enter_context(running_ffmpeg(command, log))
                     for command, log in zip(commands, logs, strict=True)]
        return [process.wait() for process in processes]


DISK_FULL_SIGNS = ("No space left on device", "File too large", "Disk quota exceeded")
