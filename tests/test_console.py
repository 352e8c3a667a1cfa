"""The console script: an interrupt from its first instant ends with one line and exit 130, never a traceback."""

from __future__ import annotations

import importlib.abc
import os
import signal
import sys
import time
from typing import Any

import pytest

from voiceguide.console import main

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGTERM") or os.name != "posix", reason="needs POSIX signals")


class _InterruptOnImport(importlib.abc.MetaPathFinder):
    """Sends this process a real signal as ``voiceguide.cli`` starts being imported (typer and the commands not
    yet loaded: the moment a traceback used to come out)."""

    def __init__(self, kind: signal.Signals) -> None:
        self.kind = kind

    def find_spec(self, name: str, path: Any, target: Any = None) -> None:
        if name == "voiceguide.cli":
            os.kill(os.getpid(), self.kind)
            time.sleep(2)  # the handler raises here
        return None


def _exit_code(monkeypatch: pytest.MonkeyPatch) -> object:
    """Run the console script as ``voiceguide list`` (SIGTERM's handler put back afterwards); its exit code."""
    monkeypatch.setattr(sys, "argv", ["voiceguide", "list"])
    term = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(SystemExit) as raised:
            main()
    finally:
        signal.signal(signal.SIGTERM, term)
    return raised.value.code


@pytest.mark.parametrize("kind", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupt_while_the_command_line_loads_is_one_line_and_exit_130(kind: signal.Signals,
                                                                            monkeypatch: pytest.MonkeyPatch,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delitem(sys.modules, "voiceguide.cli", raising=False)  # put back as it was afterwards
    monkeypatch.setattr(sys, "meta_path", [_InterruptOnImport(kind), *sys.meta_path])
    assert _exit_code(monkeypatch) == 130
    captured = capsys.readouterr()
    assert captured.err == "interrupted: nothing was written\n" and captured.out == ""


@pytest.mark.parametrize("kind", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupt_as_typer_builds_the_command_is_one_line_and_exit_130(kind: signal.Signals,
                                                                           monkeypatch: pytest.MonkeyPatch,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Between loading and the command's own handling, typer builds the click command: outside its own handling
    of Ctrl-C too (a traceback before)."""
    import typer.main

    real = typer.main.get_command

    def interrupted(app: Any) -> Any:
        os.kill(os.getpid(), kind)
        time.sleep(2)
        return real(app)

    monkeypatch.setattr(typer.main, "get_command", interrupted)
    assert _exit_code(monkeypatch) == 130
    assert capsys.readouterr().err == "interrupted: nothing was written\n"


@pytest.mark.parametrize("kind", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupt_as_typer_builds_the_command_used_is_one_line_and_exit_130(kind: signal.Signals,
                                                                                monkeypatch: pytest.MonkeyPatch,
                                                                                capsys: pytest.CaptureFixture[str]
                                                                                ) -> None:
    """The command a run uses is built inside click's own handling, where typer ends an interrupt with 130
    and no word."""
    import typer.main

    real = typer.main.get_command_from_info

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        os.kill(os.getpid(), kind)
        time.sleep(2)
        return real(*args, **kwargs)

    monkeypatch.setattr(typer.main, "get_command_from_info", interrupted)
    assert _exit_code(monkeypatch) == 130
    captured = capsys.readouterr()
    assert captured.err == "interrupted: nothing was written\n" and captured.out == ""
