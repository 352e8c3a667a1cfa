"""Where voiceguide keeps its cache: $VOICEGUIDE_CACHE_DIR, else the user's cache directory."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """Where clips, remembered routines and measurements are cached."""
    override = os.environ.get("VOICEGUIDE_CACHE_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_cache_dir("voiceguide", appauthor=False))
