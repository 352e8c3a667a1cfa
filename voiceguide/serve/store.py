"""What the server knows about: routines (built-in and in the folder) and rendered sessions.

Nothing here ever opens a path a client sent. Routines and sessions are looked
up by id in listings the server makes itself; an id that is not in the listing
is simply unknown (404).

Sessions live in ``FOLDER/.voiceguide/sessions/<id>/`` with an ``index.json``
beside them that the server writes (atomically). A render happens in
``FOLDER/.voiceguide/tmp/`` and its folder is moved into place only when it is
complete, so an interrupted render leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voiceguide.errors import RoutineError
from voiceguide.serve import library

STATE_DIR = ".voiceguide"
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,79}$")
AUDIO, PLAN, VTT, COVER = "session.mp3", "session.json", "session.vtt", "cover.png"
SESSION_FILES = {AUDIO, PLAN, VTT, COVER}


@dataclass(frozen=True)
class RoutineEntry:
    """A routine the server offers: ``id`` is what URLs use, never a path."""

    id: str
    name: str  # the file stem or built-in name
    builtin: bool
    path: Path | None  # the folder's file (a regular file directly in FOLDER), None for built-ins

    def load(self) -> Any:
        if self.builtin:
            return library.load_builtin(self.name)
        assert self.path is not None
        return library.load_routine_file(self.path)


class Store:
    """Routines in a folder plus the sessions rendered from them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()
        self.state = self.folder / STATE_DIR
        self.sessions_dir = self.state / "sessions"
        self.tmp_dir = self.state / "tmp"
        self.index_path = self.sessions_dir / "index.json"
        self._lock = threading.Lock()
        self._outline_cache: dict[tuple[str, float], dict[str, Any]] = {}

    # --- routines -------------------------------------------------------------

    def routines(self) -> list[RoutineEntry]:
        """Built-ins first, then every *.yaml / *.yml regular file directly in the folder (no symlinks)."""
        found = [RoutineEntry(f"builtin-{name}", name, True, None) for name in library.builtin_names()]
        try:
            children = sorted(self.folder.iterdir())
        except OSError:
            children = []
        for path in children:
            if path.suffix.lower() not in {".yaml", ".yml"} or path.is_symlink() or not path.is_file():
                continue
            slug = re.sub(r"[^a-z0-9_-]+", "-", path.stem.lower()).strip("-_") or "routine"
            ident = f"file-{slug}"[:80]
            if any(r.id == ident for r in found):
                continue  # two files that differ only in case or punctuation: the first wins
            found.append(RoutineEntry(ident, path.stem, False, path))
        return found

    def routine(self, routine_id: str) -> RoutineEntry | None:
        if not ID_PATTERN.match(routine_id):
            return None
        return next((r for r in self.routines() if r.id == routine_id), None)

    def outline(self, entry: RoutineEntry) -> dict[str, Any]:
        """Name, stretches and estimated length of a routine (remembered per file version)."""
        stamp = entry.path.stat().st_mtime if entry.path else 0.0
        key = (entry.id, stamp)
        if key not in self._outline_cache:
            try:
                routine = entry.load()
                info = library.routine_outline(routine)
                plan = library.plan_dict(routine, library.options_from({}))
                info |= {"duration": plan["duration"], "error": None}
            except Exception as exc:  # a broken file is listed with its error, not hidden
                message = str(exc) if isinstance(exc, RoutineError) else f"{entry.name}: {exc}"
                info = {"name": entry.name, "stretches": [], "duration": None, "error": message}
            self._outline_cache[key] = info
        return {"id": entry.id, "file": entry.name, "builtin": entry.builtin} | self._outline_cache[key]

    # --- sessions -------------------------------------------------------------

    def sessions(self) -> list[dict[str, Any]]:
        """The index, newest first; entries whose files have gone are left out."""
        try:
            data = json.loads(self.index_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        entries = [e for e in data.get("sessions", []) if isinstance(e, dict) and ID_PATTERN.match(str(e.get("id", "")))]
        return [e for e in entries if self._dir(e["id"]) is not None]

    def session(self, session_id: str) -> dict[str, Any] | None:
        if not ID_PATTERN.match(session_id):
            return None
        return next((e for e in self.sessions() if e["id"] == session_id), None)

    def _dir(self, session_id: str) -> Path | None:
        folder = self.sessions_dir / session_id
        if folder.is_symlink() or not folder.is_dir():
            return None
        return folder

    def session_file(self, session_id: str, name: str) -> Path | None:
        """One of a session's own files, by id and a fixed name; None for anything else (or a symlink)."""
        if name not in SESSION_FILES or self.session(session_id) is None:
            return None
        folder = self._dir(session_id)
        if folder is None:
            return None
        path = folder / name
        if path.is_symlink() or not path.is_file():
            return None
        return path

    def new_work_dir(self) -> Path:
        """A private folder to render into."""
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="render-", dir=self.tmp_dir))

    def add_session(self, work: Path, meta: dict[str, Any]) -> dict[str, Any]:
        """Move a finished render into place and add it to the index (both atomic)."""
        session_id = f"{library.safe_stem(meta['routine_file'])[:40]}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
        session_id = re.sub(r"[^a-z0-9_-]+", "-", session_id.lower()).strip("-_")
        audio = work / AUDIO
        entry = meta | {"id": session_id, "bytes": audio.stat().st_size, "created": time.time()}
        with self._lock:
            self.sessions_dir.mkdir(parents=True, exist_ok=True)
            os.replace(work, self.sessions_dir / session_id)
            current = self.sessions()
            self._write_index([entry, *current])
        return entry

    def _write_index(self, entries: list[dict[str, Any]]) -> None:
        fd, temp = tempfile.mkstemp(dir=self.sessions_dir, prefix=".index.", suffix=".part")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"version": 1, "sessions": entries}, handle, indent=1, ensure_ascii=False)
            os.replace(temp, self.index_path)
        finally:
            Path(temp).unlink(missing_ok=True)

    def clean_tmp(self) -> None:
        """Remove half-finished renders (from this run or one that was killed)."""
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
