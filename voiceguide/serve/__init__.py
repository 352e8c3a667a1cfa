"""``voiceguide serve``: a local web app over a folder of routines and rendered sessions.

Needs the ``serve`` extra (``pip install 'voiceguide[serve]'``): Starlette, uvicorn and segno.
Library page, a player that follows the audio, an editor that re-plans as you
drag, and a podcast feed of the sessions; nothing phones home.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from voiceguide._lazy import lazy_exports

if TYPE_CHECKING:  # what the lazy names below are, for type checkers and editors
    from voiceguide.serve.app import create_app
    from voiceguide.serve.server import serve

__all__ = ["create_app", "serve"]

# Starlette and uvicorn load only when the app is asked for: `voiceguide --help` and the other commands never do.
__getattr__ = lazy_exports(__name__, {"create_app": "app", "serve": "server"})
