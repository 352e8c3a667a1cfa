"""Every file a render writes: planned and checked before any work, then written all or nothing.

A render names each file it will write (the session, its sidecars, its split parts and playlist) up front;
``check_targets`` refuses any that is one of the inputs, is not a regular file, or is named twice. ``Staging``
then writes each one to a temporary file beside its target and renames them all into place only once every
one is complete: an error or interrupt before that replaces none of them.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from voiceguide.errors import EncoderError, OptionError, OutputError, VoiceguideError
from voiceguide.host import interrupts_held
from voiceguide.leftovers import close_journal, open_journal, sweep_journals, sweep_target, temp_name


@dataclass(frozen=True)
class Sidecars:
    """Extra files a render writes beside the session."""

    lrc: bool = False  # NAME.lrc: every spoken line at its time
    vtt: bool = False  # NAME.vtt: the same as WebVTT captions
    json: bool = False  # NAME.json: the plan
    split: bool = False  # NAME-01-<stretch>.EXT ... plus NAME.m3u


@dataclass(frozen=True)
class Target:
    """One file a render will write, and what it is (for messages)."""

    path: Path
    what: str


def safe_stem(name: str) -> str:
    """A portable file name stem from a routine or file name: no paths, no hidden files."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-_")[:80].rstrip(".-_").lower()
    if stem.split(".")[0] in _RESERVED_NAMES:  # names Windows cannot create, whatever the extension
        stem = f"{stem}-session"
    return stem or "session"


_RESERVED_NAMES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}
SIDECAR_SUFFIXES = (("lrc", ".lrc", "LRC lyrics"), ("vtt", ".vtt", "WebVTT captions"), ("json", ".json", "JSON plan"))


def split_path(output: Path, number: int, title: str) -> Path:
    """Where stretch ``number`` of a split session goes: NAME-01-<stretch>.EXT beside the session."""
    return output.with_name(f"{output.stem}-{number:02d}-{safe_stem(title)}{output.suffix}")


def session_targets(output: Path, extras: Sidecars, split_titles: Sequence[str] = (), label: str = "") -> list[Target]:
    """Every file a render of one session writes: sidecars, split parts and playlist, then the session itself."""
    of = f" of {label}" if label else ""
    targets = [Target(output.with_suffix(suffix), f"the {what}{of}")
               for flag, suffix, what in SIDECAR_SUFFIXES if getattr(extras, flag)]
    if extras.split:
        targets += [Target(split_path(output, number, title), f"split part {number} ({title}){of}")
                    for number, title in enumerate(split_titles, 1)]
        targets.append(Target(output.with_suffix(".m3u"), f"the playlist{of}"))
    targets.append(Target(output, f"the session{of}"))
    return targets


def _identity(path: Path) -> tuple[object, ...]:
    """What makes two paths the same file: device and inode where it exists, else its resolved path."""
    try:
        info = os.stat(path)
    except OSError:
        return ("path", str(path.resolve()))
    return ("inode", info.st_dev, info.st_ino)


def check_targets(targets: Sequence[Target], inputs: Iterable[tuple[str, Path]] = ()) -> None:
    """Refuse, before any work, a target that is an input, is not a regular file, or is named twice (OptionError)."""
    read = {_identity(Path(path)): (what, Path(path)) for what, path in inputs}
    seen: dict[tuple[object, ...], Target] = {}
    for target in targets:
        key = _identity(target.path)
        if key in read:
            what, path = read[key]
            raise OptionError(f"{target.path}: is {what} ({path}); writing {target.what} there would destroy it "
                              "- choose another output name")
        try:
            mode = os.stat(target.path).st_mode
        except OSError:
            mode = None
        if mode is not None and not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file (a device, FIFO or socket)"
            raise OptionError(f"{target.path}: is {kind}; outputs only replace regular files")
        if key in seen:
            raise OptionError(f"{target.path}: {seen[key].what} and {target.what} would both be written here; "
                              "rename one")
        seen[key] = target


def disk_full(exc: BaseException) -> bool:
    """Whether an error (or the OSError it wraps, as mutagen's do) means the disk or file size limit is full."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            return True
        inner = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None
        exc = inner or exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


def write_error(output: Path, exc: BaseException) -> VoiceguideError:
    """Our one-line error for a failed write (a full disk says so; tagging failures from mutagen included)."""
    if disk_full(exc):
        return OutputError(f"{output}: cannot write: the disk is full or the file is too large "
                           f"({_reason(exc)}); nothing was replaced")
    if isinstance(exc, OSError):
        return OutputError(f"{output}: cannot write ({exc.strerror}); nothing was replaced")
    return EncoderError(f"{output}: tagging failed ({exc}); nothing was replaced")


def _reason(exc: BaseException) -> str:
    while exc is not None and not isinstance(exc, OSError):
        inner = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None
        exc = inner or exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return (exc.strerror if exc is not None else None) or "file size limit exceeded"


class Staging:
    """Temporary files beside their targets, renamed into place together by ``commit`` (all or nothing).

    Entering removes what killed renders of the same targets (and any killed render noted in ``journal``)
    left behind, and notes the targets in
    ``journal`` (the cache folder) so that `cache clear` can find this render's temporaries should it be
    killed. Leaving without a commit removes every temporary file: nothing is replaced.
    """

    def __init__(self, targets: Sequence[Path], journal: Path | None = None) -> None:
        self.targets = list(targets)
        self.journal_folder = journal
        self.temps: dict[Path, Path] = {}
        self.note: Path | None = None
        self.committed = False

    def __enter__(self) -> Staging:
        for target in self.targets:
            sweep_target(target)
        if self.journal_folder is not None:
            sweep_journals(self.journal_folder)  # and whatever other killed renders noted
        self.note = open_journal(self.journal_folder, self.targets)
        return self

    def temp(self, target: Path) -> Path:
        """A new empty temporary file for ``target``, created with the permissions the umask gives new files."""
        path = temp_name(target)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except OSError as exc:
            raise OutputError(f"{target.parent}: cannot write the output here ({exc.strerror})") from None
        self.temps[target] = path
        return path

    def commit(self) -> None:
        """Rename every temporary file over its target (existing targets keep their permissions).

        The renames take microseconds; SIGINT and SIGTERM are held back while they run, so an interrupt
        lands before all of them or after all of them. Only SIGKILL or a power cut in that window could
        leave some targets new and others old.
        """
        for target, temp in self.temps.items():
            try:
                os.chmod(temp, stat.S_IMODE(os.stat(target).st_mode))
            except FileNotFoundError:
                pass  # a new file: the umask already decided
            except OSError as exc:
                raise OutputError(f"{target}: cannot write ({exc.strerror})") from None
        with interrupts_held():  # a held-back interrupt is raised as the block ends
            done: list[Path] = []
            for target in sorted(self.temps, key=lambda t: t in self.targets[-1:]):  # the session last
                try:
                    os.replace(self.temps[target], target)
                except OSError as exc:
                    written = f" ({', '.join(map(str, done))} already replaced)" if done else ""
                    raise OutputError(f"{target}: cannot write ({exc.strerror}){written}") from None
                done.append(target)
            self.committed = True

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if not self.committed:
            for temp in self.temps.values():
                temp.unlink(missing_ok=True)
        close_journal(self.note)
