"""``voiceguide serve``: a local web app over a folder of routines and rendered sessions.

Needs the ``serve`` extra (``pip install 'voiceguide[serve]'``): Starlette, uvicorn and segno.
Library page, a player that follows the audio, an editor that re-plans as you
drag, and a podcast feed of the sessions; nothing phones home.
"""

from __future__ import annotations

__all__ = ["create_app", "serve"]


def __getattr__(name: str) -> object:
    if name == "create_app":
        from voiceguide.serve.app import create_app

        return create_app
    if name == "serve":
        from voiceguide.serve.server import serve

        return serve
    raise AttributeError(f"module 'voiceguide.serve' has no attribute {name!r}")
