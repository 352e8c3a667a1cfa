"""The content-addressed clip cache."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

from voiceguide.host import NOTE_KINDS, default_cache_dir
from voiceguide.speech.engine import CLIP_FORMAT, Clip, VoiceSettings

LIMITED = "limited"  # the sub-folder (a cache of its own) for clips as the session's limiter turned them down

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
        payload = json.dumps([CLIP_FORMAT, engine_identity, voice.synthesis(), rate, text], sort_keys=True)
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

    def _header(self, key: str) -> tuple[bytes, int, int, bytes] | None:
        """A stored clip's header (magic, rate, byte length, sha256 of the PCM) without its PCM, or None."""
        if not self.enabled:
            return None
        try:
            with open(self._path(key), "rb") as handle:
                header = handle.read(_HEADER.size)
        except OSError:
            return None
        if len(header) < _HEADER.size or header[:8] != _MAGIC:
            return None
        magic, rate, length, digest = _HEADER.unpack(header)
        return bytes(magic), int(rate), int(length), bytes(digest)

    def length(self, key: str) -> int | None:
        """The stored clip's length in samples, reading only its header (for quick plans)."""
        header = self._header(key)
        return None if header is None else int(header[2]) // 2

    def digest(self, key: str) -> bytes | None:
        """The SHA-256 of the stored clip's PCM, from its header only (the content's identity, cheaply)."""
        header = self._header(key)
        return None if header is None else bytes(header[3])

    def put(self, key: str, clip: Clip) -> None:
        """Store a clip atomically (write a temporary file, then rename).

        The cache only saves time: if it cannot be written (full disk, read-only
        folder) the render goes on without it.
        """
        if not self.enabled:
            return
        import tempfile  # only writing needs it: a plan from a warm cache never loads it

        path = self._path(key)
        header = _HEADER.pack(_MAGIC, clip.rate, len(clip.pcm), hashlib.sha256(clip.pcm).digest())
        temp: str | None = None
        try:
            try:  # the sub-folder is made when it is missing (a mkdir that finds it raises, catches: 0.2 ms a clip)
                fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".clip")
            except FileNotFoundError:
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
        for f in (self.folder / LIMITED).glob("*/*.clip") if (self.folder / LIMITED).exists() else []:
            f.unlink(missing_ok=True)  # clips as the limiter left them (audio.loudness keeps them here)
        return len(files)
