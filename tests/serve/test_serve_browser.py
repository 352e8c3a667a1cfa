"""The player in a real browser (Debian's chromium driven by Playwright): what it shows follows the audio.

Skipped when chromium or Playwright is missing, except in CI (CI=true), where it must run.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serve_fixtures import client, folder_copy, rendered  # noqa: F401  (fixtures, shared by the serve tests)

from voiceguide.serve.app import create_app

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--autoplay-policy=no-user-gesture-required"]
WINDOWS = {"hold", "prepare", "switch", "rest"}
SHOTS = Path(os.environ.get("VOICEGUIDE_SHOTS", "")) if os.environ.get("VOICEGUIDE_SHOTS") else None

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _require_browser() -> Any:
    in_ci = os.environ.get("CI", "").lower() == "true"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if in_ci:
            pytest.fail("playwright is not installed (pip install -e '.[serve,test]')")
        pytest.skip("playwright is not installed")
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        if in_ci:
            pytest.fail(f"{CHROMIUM} is missing (scripts/ci-browser-deps.sh installs it)")
        pytest.skip("chromium is not installed")
    return sync_playwright


def expected_at(plan: dict[str, Any], t: float) -> dict[str, Any]:
    """What the player must show at time t: the same rule as stateAt() in player.js, from the plan."""
    events = plan["events"]
    current = next((e for e in events if e["kind"] in WINDOWS and e["start"] <= t < e["end"]), None)
    current = current or next((e for e in events if e["start"] <= t < e["end"]), None)
    if current is None:
        started = [e for e in events if e["start"] <= t]
        current = started[-1] if started else None
    chapter = next((c for c in plan["chapters"] if c["start"] <= t < c["end"]), plan["chapters"][-1])
    stretch = current["stretch"] if current else None
    side = (current["side"] or "") if stretch else ""
    in_window = bool(current and current["kind"] in WINDOWS)
    count = str(max(0, math.ceil(current["end"] - t - 1e-6))) if in_window else ""
    title = (f"{stretch} ({side})" if side else stretch) if stretch else chapter["title"]
    return {"stretch": stretch or chapter["title"], "side": side, "count": count, "title": title}


@pytest.fixture(scope="module")
def live_server(rendered: dict[str, Any]) -> Iterator[str]:
    """uvicorn on a free localhost port, in a thread."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(create_app(rendered["folder"]), host="127.0.0.1", port=port, access_log=False,
                            log_level="warning", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


SEEK = """async (t) => {
  const a = document.getElementById('audio');
  await new Promise((done) => { a.addEventListener('seeked', done, { once: true }); a.currentTime = t; });
  await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
  return READ();
}"""
READ = """() => ({
  t: document.getElementById('audio').currentTime,
  paused: document.getElementById('audio').paused,
  stretch: document.getElementById('stretch').textContent,
  side: document.getElementById('side').textContent,
  count: document.getElementById('count').textContent,
  title: navigator.mediaSession.metadata && navigator.mediaSession.metadata.title,
  artist: navigator.mediaSession.metadata && navigator.mediaSession.metadata.artist,
  album: navigator.mediaSession.metadata && navigator.mediaSession.metadata.album,
  artwork: navigator.mediaSession.metadata && navigator.mediaSession.metadata.artwork.map((a) => a.src),
})"""


def _check(shown: dict[str, Any], plan: dict[str, Any]) -> None:
    want = expected_at(plan, shown["t"])
    got = {k: shown[k] for k in ("stretch", "side", "count", "title")}
    assert got == want, f"at {shown['t']:.3f} s"


def test_player_follows_the_audio(rendered: dict[str, Any], live_server: str, tmp_path: Path) -> None:
    sync_playwright = _require_browser()
    plan = rendered["plan"]
    holds = [e for e in plan["events"] if e["kind"] == "hold"]
    prepares = [e for e in plan["events"] if e["kind"] == "prepare"]
    times = [0.2, holds[0]["start"] + 0.25, holds[0]["end"] - 1.5, holds[1]["start"] + 1.1, prepares[-1]["start"] + 0.3,
             holds[2]["end"] - 0.4, holds[0]["start"] + 2.6]  # the last one seeks backwards
    shots = SHOTS or tmp_path / "shots"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            outside: list[str] = []
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(live_server) else None)
            started = time.perf_counter()
            page.goto(f"{live_server}/play/{rendered['id']}")
            page.wait_for_selector("body[data-ready='1']")
            print(f"player ready in {(time.perf_counter() - started) * 1000:.0f} ms")
            page.evaluate("""async () => {
              const a = document.getElementById('audio');
              a.muted = true;
              if (a.readyState < 1) await new Promise((r) => a.addEventListener('loadedmetadata', r, { once: true }));
              await a.play();
            }""")
            page.wait_for_timeout(400)
            shown = page.evaluate(f"async () => {{ const a = document.getElementById('audio'); a.pause();"
                                  f" await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));"
                                  f" return ({READ})(); }}")
            assert shown["paused"] and shown["t"] > 0.1, shown  # it played, following the audio
            _check(shown, plan)
            seek = SEEK.replace("READ()", f"({READ})()")
            for t in times:
                shown = page.evaluate(seek, t)
                assert abs(shown["t"] - t) < 0.05
                _check(shown, plan)
                assert shown["artist"] == "voiceguide" and shown["album"] == plan["routine"]
                assert shown["artwork"][0].endswith(f"/sessions/{rendered['id']}/cover.png")
            # In a hold, the countdown is the hold's seconds left, rounded up.
            shown = page.evaluate(seek, holds[1]["end"] - 2.5)
            assert shown["count"] == "3" and shown["side"] == holds[1]["side"]
            page.screenshot(path=str(shots / "player-390x844.png"))
            # Chapter marks and the chapter list: tapping a chapter jumps there.
            assert page.locator("#bar .mark").count() == len(plan["chapters"]) - 1
            page.click("details.chapters summary")
            page.locator("#chapters button").nth(2).click()
            page.wait_for_timeout(100)
            assert abs(page.evaluate("document.getElementById('audio').currentTime") - plan["chapters"][2]["start"]) < 0.05
            # Next/previous stretch buttons.
            page.evaluate(seek, 0.5)
            page.click("#next-btn")
            page.wait_for_timeout(100)
            first_stretch = next(e for e in plan["events"] if e["stretch"])
            assert abs(page.evaluate("document.getElementById('audio').currentTime") - first_stretch["start"]) < 0.05
            page.set_viewport_size({"width": 1280, "height": 800})
            page.evaluate(seek, holds[0]["start"] + 1.2)
            page.screenshot(path=str(shots / "player-1280x800.png"))
            page.emulate_media(color_scheme="dark")
            page.set_viewport_size({"width": 390, "height": 844})
            page.evaluate(seek, holds[2]["start"] + 0.7)
            page.screenshot(path=str(shots / "player-dark-390x844.png"))
            for name, url, size in (("library", "/", (1280, 800)), ("library-phone", "/", (390, 844)),
                                    ("editor", "/edit/builtin-psoas", (1280, 800))):
                page.emulate_media(color_scheme="light")
                page.set_viewport_size({"width": size[0], "height": size[1]})
                page.goto(live_server + url)
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(shots / f"{name}-{size[0]}x{size[1]}.png"), full_page=True)
            assert not errors, errors
            assert not outside, outside  # nothing phones home
        finally:
            browser.close()


def _api_plan(live_server: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The plan the server makes for the editor's settings, fetched outside the browser."""
    import json
    import urllib.request

    request = urllib.request.Request(f"{live_server}/api/plan", method="POST",
                                     data=json.dumps({"routine_id": "builtin-psoas", "settings": settings}).encode(),
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


def _clock(seconds: float) -> str:
    whole = round(seconds)
    hours, minutes, secs = whole // 3600, whole % 3600 // 60, whole % 60
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def test_editor_replans_as_a_user_drags_and_saves_what_it_shows(rendered: dict[str, Any], live_server: str) -> None:
    from voiceguide.pipeline import SessionOptions
    from voiceguide.pipeline.session import plan_session
    from voiceguide.routine.load import load_routine_file

    sync_playwright = _require_browser()
    saved = rendered["folder"] / "psoas-longer.yaml"
    outside_folder = rendered["folder"].parent / "evil.yaml"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{live_server}/edit/builtin-psoas")
            page.wait_for_selector("body[data-ready='1']")
            before = page.evaluate("settings()")  # what the page would send: the routine's own holds and defaults
            assert page.text_content("#total") == _clock(_api_plan(live_server, before)["duration"])
            # A user moves the first hold's slider ten steps with the keyboard and switches the chimes off.
            base = float(page.input_value("#hold-0"))
            page.focus("#hold-0")
            for _ in range(10):
                page.keyboard.press("ArrowRight")
            page.click("#tones")
            after = page.evaluate("settings()")
            assert list(after["holds"].values()) == [base + 10] and after["tones"] is not before["tones"]
            wanted = _clock(_api_plan(live_server, after)["duration"])
            assert wanted != page.evaluate("clock(0)")
            page.wait_for_function("(want) => document.getElementById('total').textContent === want", arg=wanted)
            # Save as a new file: it must plan to exactly what the editor showed.
            page.fill("#name", saved.stem)
            page.click("#save")
            page.wait_for_function("() => document.getElementById('status').textContent.startsWith('Saved')")
            assert saved.is_file()
            replanned = plan_session(load_routine_file(saved), SessionOptions(), estimate=True)
            assert _clock(replanned.duration) == wanted
            # Saving again without "replace" is refused and keeps the file; a name that climbs out is refused.
            first = saved.read_bytes()
            page.click("#save")
            page.wait_for_function("() => document.getElementById('status').classList.contains('error')")
            assert "exists" in page.text_content("#status") and saved.read_bytes() == first
            page.fill("#name", "../evil")
            page.click("#save")
            page.wait_for_function("() => document.getElementById('status').textContent.startsWith('name:')")
            assert not outside_folder.exists()
            assert not errors, errors
        finally:
            browser.close()
            saved.unlink(missing_ok=True)
