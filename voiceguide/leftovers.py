"""Temporary files and folders: named so they are recognisably ours and carry their owner's pid, and removed
safely once their owner is gone (a render killed with SIGKILL, a power cut).

Only our exact name patterns are ever touched, only regular files and real folders (never symlinks) owned
by this user, and only when the pid in the name is no longer running (names from before pids were embedded:
only when older than OLD_SECONDS). A live concurrent render's temporaries are therefore never removed.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import stat
import tempfile
import time
from pathlib import Path

OLD_SECONDS = 600.0  # a temporary without a pid in its name is abandoned after this long
FOLDER_KINDS = ("speech", "encode")  # voiceguide-speech-<pid>-*, voiceguide-encode-<pid>-* in the temp folder
_RANDOM = r"[a-z0-9_]{8}"  # tempfile's random part (names from before pids were embedded)
_FOLDER = re.compile(rf"voiceguide-(?:{'|'.join(FOLDER_KINDS)})-(?:(\d+)-[a-z0-9_]{{8}}|{_RANDOM})")


def temp_folder(kind: str) -> Path:
    """A new private folder in the system's temp folder, named voiceguide-<kind>-<pid>-<random>."""
    return Path(tempfile.mkdtemp(prefix=f"voiceguide-{kind}-{os.getpid()}-"))


def temp_name(target: Path, suffix: str = ".part") -> Path:
    """A temporary name beside ``target``: .<name>.vg<pid>-<random><suffix> (a dot file, so hidden)."""
    return target.with_name(f".{target.name}.vg{os.getpid()}-{secrets.token_hex(4)}{suffix}")


def _file_pattern(name: str) -> re.Pattern[str]:
    # .NAME.vg<pid>-<hex>.part, its MP3 parts .part.0, .part.1 ..., and write probes; older names had no pid.
    return re.compile(rf"\.{re.escape(name)}\.(?:vg(\d+)-[0-9a-f]{{8}}|{_RANDOM})\.(?:part(?:\.\d+)?|probe)")


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid is running (a zombie, killed but not yet reaped, is not)."""
    if pid == os.getpid() or os.name != "posix":  # elsewhere os.kill(pid, 0) would terminate it: assume alive
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _abandoned(pid: str | None, info: os.stat_result) -> bool:
    if info.st_uid != os.geteuid():
        return False
    if pid:
        return not pid_alive(int(pid))
    return time.time() - info.st_mtime > OLD_SECONDS


def sweep_target(target: Path) -> int:
    """Remove the abandoned temporaries of ``target`` (from killed renders) beside it; return how many."""
    pattern = _file_pattern(target.name)
    removed = 0
    try:
        names = os.listdir(target.parent)
    except OSError:
        return 0
    for name in names:
        match = pattern.fullmatch(name)
        if not match:
            continue
        path = target.parent / name
        try:
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode) and _abandoned(match.group(1), info):
                path.unlink()
                removed += 1
        except OSError:
            continue  # gone already, or not ours to remove
    return removed


def sweep_temp_folders(folder: Path | None = None) -> int:
    """Remove abandoned voiceguide-speech-* and voiceguide-encode-* folders; return how many."""
    folder = folder or Path(tempfile.gettempdir())
    removed = 0
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    for name in names:
        match = _FOLDER.fullmatch(name)
        if not match:
            continue
        path = folder / name
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode) and _abandoned(match.group(1), info):
            shutil.rmtree(path, ignore_errors=True)
            removed += not path.exists()
    return removed


# A render notes its targets in the cache folder while it runs, so that `cache clear` can find the
# temporaries of a render that was killed, wherever it was writing.
JOURNAL = "renders-in-progress"


def open_journal(folder: Path | None, targets: list[Path]) -> Path | None:
    """Note ``targets`` as being written by this process; None if the note cannot be written (it only helps)."""
    if folder is None:
        return None
    import json

    note = folder / JOURNAL / f"{os.getpid()}-{secrets.token_hex(4)}.json"
    try:
        note.parent.mkdir(parents=True, exist_ok=True)
        note.write_text(json.dumps([str(t.absolute()) for t in targets]), encoding="utf-8")
    except OSError:
        return None
    return note


def close_journal(note: Path | None) -> None:
    """The render has finished (or cleaned up after itself): forget its note."""
    if note is not None:
        note.unlink(missing_ok=True)


def sweep_journals(folder: Path) -> int:
    """Remove the temporaries of every noted render whose process is gone; return how many files."""
    import json

    removed = 0
    for note in sorted((folder / JOURNAL).glob("*.json")) if (folder / JOURNAL).is_dir() else []:
        pid = note.name.split("-", 1)[0]
        if not pid.isdigit() or pid_alive(int(pid)):
            continue
        try:
            targets = json.loads(note.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            targets = []
        for target in targets if isinstance(targets, list) else []:
            if isinstance(target, str):
                removed += sweep_target(Path(target))
        note.unlink(missing_ok=True)
    return removed


def clean_leftovers(cache_folder: Path | None) -> int:
    """Everything killed renders left behind (noted in ``cache_folder``) and abandoned temp folders; return the count."""
    return (sweep_journals(cache_folder) if cache_folder else 0) + sweep_temp_folders()
