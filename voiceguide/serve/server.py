"""Run the app with uvicorn: bind, access key, the URL (and a QR code for phones on the LAN)."""

from __future__ import annotations

import secrets
import socket
import sys
from pathlib import Path
from typing import TextIO
from urllib.parse import quote

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def lan_address() -> str:
    """This machine's address on the local network (no packet is sent: UDP connect only picks a route)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def terminal_qr(text: str, out: TextIO) -> None:
    """A QR code of ``text`` drawn with block characters."""
    import segno

    segno.make(text, error="m").terminal(out=out, compact=True)


def serve(folder: Path, host: str | None = None, port: int = DEFAULT_PORT, lan: bool = False, key: str | None = None,
          out: TextIO = sys.stderr) -> None:
    """Serve ``folder`` until Ctrl-C. ``lan`` binds every interface and requires an access key."""
    import uvicorn

    from voiceguide.errors import OptionError
    from voiceguide.serve.app import create_app

    if not folder.is_dir():
        raise OptionError(f"serve: {folder} is not a folder")
    if key is not None and len(key) < 8:
        raise OptionError("--key: use at least 8 characters")
    bind = host or ("0.0.0.0" if lan else DEFAULT_HOST)
    if lan or key:
        key = key or secrets.token_urlsafe(18)
    app = create_app(folder, key)
    shown = lan_address() if bind in {"0.0.0.0", "::"} else bind
    url = f"http://{shown}:{port}/"
    if key:
        url += f"?key={quote(key, safe='')}"
    print(f"voiceguide: serving {folder.resolve()} at {url}", file=out)
    if key:
        print(f"podcast feed: http://{shown}:{port}/feed.xml?key={quote(key, safe='')}", file=out)
        terminal_qr(url, out)
    print("press Ctrl-C to stop", file=out, flush=True)
    # No access log: URLs may carry the key, and nothing else needs logging per request.
    uvicorn.run(app, host=bind, port=port, access_log=False, log_level="warning", timeout_graceful_shutdown=3,
                server_header=False)
