"""The ``voiceguide`` console script: the command line (voiceguide.cli), interruptible from its first instant.

Loading the command line (typer, click and the commands) takes a tenth of a
second, before any command can handle Ctrl-C itself: an interrupt then ended in
a Python traceback (Ctrl-C) or a silent kill (SIGTERM). Here both end as every
interrupt does: one line, exit 130. Nothing is written before a command starts.
"""

from __future__ import annotations

import signal
import sys
from typing import NoReturn

from voiceguide.errors import EXIT_INTERRUPTED


def _interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


def main() -> None:
    """Run the command line; an interrupt while it loads or outside a command: one line, exit 130.

    SIGTERM raises KeyboardInterrupt from the start (each command's own handling
    takes over while it runs), so outside a command typer ends it with 130 as it
    ends Ctrl-C, instead of the signal killing the process without a word."""
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        from voiceguide.cli import main as run

        run()
    except KeyboardInterrupt:  # outside every command's own handling: while loading, or typer building the command
        cli = sys.modules.get("voiceguide.cli")
        outcome = getattr(cli, "interrupted_outcome", None)
        sys.stderr.write(f"interrupted: {outcome() if outcome else 'nothing was written'}\n")
        raise SystemExit(EXIT_INTERRUPTED) from None
