"""The web app over HTTP (Starlette's TestClient): routes, access key, traversal, limits, ranges, feed."""

from __future__ import annotations

import asyncio
import hmac
import json
import statistics
import time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from serve_fixtures import client, folder_copy, rendered  # noqa: F401  (fixtures, shared by the serve tests)
from starlette.testclient import TestClient

from voiceguide.errors import RoutineError
from voiceguide.routine import parse_routine
from voiceguide.serve.app import KEY_COOKIE, MAX_ROUTINE_BYTES, create_app
from voiceguide.serve.feed import PODCAST

KEY = "test-key-0123456789"


def call_raw(app: Any, raw_path: bytes, query: bytes = b"") -> tuple[int, bytes]:
    """Send one GET straight to the ASGI app with the path exactly as given (no client normalises it)."""
    from urllib.parse import unquote_to_bytes

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": unquote_to_bytes(raw_path).decode("latin-1"), "raw_path": raw_path, "root_path": "",
        "query_string": query, "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 1), "server": ("testserver", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


# --- every route -------------------------------------------------------------------


def test_pages_and_static(client: TestClient, rendered: dict[str, Any]) -> None:
    home = client.get("/")
    assert home.status_code == 200 and "text/html" in home.headers["content-type"]
    assert "/static/library.js" in home.text
    assert client.get(f"/play/{rendered['id']}").status_code == 200
    assert client.get("/edit/builtin-psoas").status_code == 200
    assert client.get("/edit/file-tiny").status_code == 200
    for name in ("style.css", "common.js", "library.js", "player.js", "editor.js"):
        assert client.get(f"/static/{name}").status_code == 200, name
    icon = client.get("/icon.png")
    assert icon.status_code == 200 and icon.content.startswith(b"\x89PNG")
    assert client.get("/play/no-such-session").status_code == 404
    assert client.get("/edit/no-such-routine").status_code == 404


def test_pages_reference_nothing_outside(client: TestClient) -> None:
    """Offline: no page or script names another host."""
    for path in ("/", "/static/player.js", "/static/library.js", "/static/editor.js", "/static/common.js",
                 "/static/style.css"):
        text = client.get(path).text
        assert "http://" not in text and "https://" not in text, path
    page = client.get("/")
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_library_lists_builtins_folder_routines_and_sessions(client: TestClient, rendered: dict[str, Any]) -> None:
    data = client.get("/api/library").json()
    ids = [r["id"] for r in data["routines"]]
    from voiceguide.routine import builtin_names

    assert ids[:len(builtin_names())] == [f"builtin-{name}" for name in builtin_names()] and "file-tiny" in ids
    tiny = next(r for r in data["routines"] if r["id"] == "file-tiny")
    assert [s["name"] for s in tiny["stretches"]] == ["Reach up", "Side bend"] and tiny["duration"] > 10
    [session] = data["sessions"]
    assert session["id"] == rendered["id"] and session["stretches"] == ["Reach up", "Side bend"]
    assert session["duration"] == pytest.approx(rendered["plan"]["duration"])
    assert client.get(f"/api/sessions/{rendered['id']}").json()["id"] == rendered["id"]


def test_session_files(client: TestClient, rendered: dict[str, Any]) -> None:
    sid = rendered["id"]
    audio = client.get(f"/sessions/{sid}/audio.mp3")
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/mpeg"
    assert audio.content == (rendered["dir"] / "session.mp3").read_bytes()
    assert audio.headers["accept-ranges"] == "bytes"
    assert client.get(f"/sessions/{sid}/plan.json").json() == rendered["plan"]
    vtt = client.get(f"/sessions/{sid}/transcript.vtt")
    assert vtt.status_code == 200 and vtt.text.startswith("WEBVTT") and "Reach up" in vtt.text
    assert client.get(f"/sessions/{sid}/cover.png").content.startswith(b"\x89PNG")
    chapters = client.get(f"/sessions/{sid}/chapters.json")
    assert chapters.headers["content-type"].startswith("application/json+chapters")
    body = chapters.json()
    assert body["version"] == "1.2.0"
    assert [(c["startTime"], c["title"]) for c in body["chapters"]] == [
        (c["start"], c["title"]) for c in rendered["plan"]["chapters"]]


def test_routine_api(client: TestClient) -> None:
    info = client.get("/api/routines/builtin-psoas").json()
    assert info["name"] == "Psoas release" and len(info["stretches"]) == 4 and info["text"] is None
    tiny = client.get("/api/routines/file-tiny").json()
    assert tiny["text"].startswith("# Two short stretches")
    assert client.get("/api/routines/nope").status_code == 404


def test_replan_follows_settings(client: TestClient) -> None:
    base = client.post("/api/plan", json={"routine_id": "builtin-psoas"}).json()
    longer = client.post("/api/plan", json={"routine_id": "builtin-psoas", "settings": {"hold_scale": 2}}).json()
    holds = [e for e in base["events"] if e["kind"] == "hold"]
    assert longer["duration"] == pytest.approx(base["duration"] + sum(h["end"] - h["start"] for h in holds), abs=0.01)
    one = client.post("/api/plan", json={"routine_id": "builtin-psoas", "settings": {"holds": {"Table stretch": 90}}}).json()
    table = [e for e in one["events"] if e["kind"] == "hold" and e["stretch"] == "Table stretch"]
    assert table and all(e["end"] - e["start"] == pytest.approx(90) for e in table)
    bad = client.post("/api/plan", json={"routine_id": "builtin-psoas", "settings": {"hold_scale": 0}})
    assert bad.status_code == 400 and "hold-scale" in bad.json()["error"]
    assert client.post("/api/plan", json={"routine_id": "nope"}).status_code == 404
    assert client.post("/api/plan", content=b"not json", headers={"content-type": "application/json"}).status_code == 400


def test_replan_round_trip_is_fast(client: TestClient) -> None:
    """The editor re-plans on every slider move: the median POST /api/plan for psoas stays well under 100 ms."""
    timings = []
    for scale in range(20):
        started = time.perf_counter()
        response = client.post("/api/plan", json={"routine_id": "builtin-psoas", "settings": {"hold_scale": 1 + scale / 10}})
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200
    median = statistics.median(timings) * 1000
    print(f"re-plan round trip: median {median:.1f} ms over 20")
    assert median < 100


def test_job_events_and_status(client: TestClient, rendered: dict[str, Any]) -> None:
    assert "event: done" in rendered["events"] and "event: progress" in rendered["events"]
    assert client.get("/api/jobs/nope").status_code == 404
    assert client.get("/api/jobs/nope/events").status_code == 404


def test_render_refuses_bad_settings_before_queueing(client: TestClient) -> None:
    response = client.post("/api/render", json={"routine_id": "file-tiny", "settings": {"rest": -1}})
    assert response.status_code == 400 and "--rest" in response.json()["error"]


# --- uploads: validation and limits ----------------------------------------------------------------

BAD = "name: Broken\nstretches:\n  - name: A\n    hold: -3\n"


def test_bad_routine_text_gives_the_one_line_message(client: TestClient) -> None:
    with pytest.raises(RoutineError) as expected:
        parse_routine(BAD, "mine.yaml")
    for route in ("/api/plan", "/api/render", "/api/save"):
        response = client.post(route, json={"text": BAD, "source": "mine.yaml", "name": "x"})
        assert response.status_code == 400, route
        assert response.json() == {"error": str(expected.value)}
        assert response.json()["error"].startswith("mine.yaml:4: stretches[0].hold")


def test_edited_text_replans(client: TestClient) -> None:
    text = client.get("/api/routines/file-tiny").json()["text"]
    plan = client.post("/api/plan", json={"text": text.replace("hold: 5", "hold: 20"), "source": "tiny.yaml"}).json()
    reach = [e for e in plan["events"] if e["kind"] == "hold" and e["stretch"] == "Reach up"]
    assert reach[0]["end"] - reach[0]["start"] == pytest.approx(20)


def test_oversize_is_413(client: TestClient) -> None:
    big = "# " + "x" * MAX_ROUTINE_BYTES + "\n" + BAD
    assert client.post("/api/plan", json={"text": big}).status_code == 413
    huge = b'{"text": "' + b"y" * (2 * MAX_ROUTINE_BYTES) + b'"}'
    assert client.post("/api/plan", content=huge, headers={"content-type": "application/json"}).status_code == 413


# --- save as ------------------------------------------------------------------------------------------


def test_save_as_writes_a_valid_routine_and_refuses_to_overwrite(folder_copy: Path) -> None:
    with TestClient(create_app(folder_copy)) as c:
        response = c.post("/api/save", json={"name": "my-psoas", "routine_id": "builtin-psoas",
                                             "settings": {"hold_scale": 1.5, "rest": 7}})
        assert response.status_code == 201, response.text
        assert response.json() == {"id": "file-my-psoas", "file": "my-psoas.yaml"}
        saved = parse_routine((folder_copy / "my-psoas.yaml").read_text(encoding="utf-8"), "my-psoas.yaml")
        assert saved.defaults.rest == 7 and saved.name == "Psoas release"
        planned = c.post("/api/plan", json={"routine_id": "file-my-psoas"}).json()
        scaled = c.post("/api/plan", json={"routine_id": "builtin-psoas", "settings": {"hold_scale": 1.5, "rest": 7}}).json()
        assert planned["duration"] == pytest.approx(scaled["duration"], abs=0.01)
        # Holds baked shorter than the countdown would make a file that does not plan: refused, nothing written.
        short = c.post("/api/save", json={"name": "short", "routine_id": "builtin-psoas", "settings": {"hold_scale": 0.05}})
        assert short.status_code == 400 and "countdown" in short.json()["error"]
        assert not (folder_copy / "short.yaml").exists()
        again = c.post("/api/save", json={"name": "my-psoas", "routine_id": "builtin-psoas"})
        assert again.status_code == 409
        assert c.post("/api/save", json={"name": "my-psoas", "routine_id": "builtin-psoas",
                                         "overwrite": True}).status_code == 201
        for name in ("../evil", "/tmp/evil", "a/b", ".hidden", ""):
            assert c.post("/api/save", json={"name": name, "routine_id": "builtin-psoas"}).status_code == 400, name
        assert not (folder_copy.parent / "evil.yaml").exists()


# --- safety: traversal, symlinks -------------------------------------------------------------------


@pytest.mark.parametrize("raw", [
    b"/sessions/../../etc/passwd",
    b"/sessions/%2e%2e/%2e%2e/etc/passwd",
    b"/sessions/%2e%2e/plan.json",
    b"/sessions/..%2f..%2fetc%2fpasswd/audio.mp3",
    b"/sessions/%2E%2E%2F%2E%2E%2Fetc/plan.json",
    b"/sessions//etc/passwd/plan.json",
    b"/sessions/%2fetc%2fpasswd/plan.json",
    b"/static/../app.py",
    b"/static/%2e%2e%2fapp.py",
    b"/static/library.html",
    b"/static/%2fetc%2fpasswd",
    b"/edit/..%2f..%2fetc%2fpasswd",
    b"/api/routines/%2e%2e",
    b"/play/%2e%2e%2f.voiceguide",
    b"/etc/passwd",
])
def test_traversal_is_404(rendered: dict[str, Any], raw: bytes) -> None:
    status, body = call_raw(create_app(rendered["folder"]), raw)
    assert status == 404, raw
    assert b"root:" not in body


def test_traversal_via_client(client: TestClient, rendered: dict[str, Any]) -> None:
    for path in ("/sessions/../../etc/passwd", f"/sessions/{rendered['id']}/../../../tiny.yaml",
                 f"/sessions/{rendered['id']}/session.mp3", f"/sessions/{rendered['id']}/index.json"):
        assert client.get(path).status_code == 404, path


def test_symlinks_pointing_out_are_404(folder_copy: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.yaml").write_text("name: Secret\nstretches:\n  - name: S\n", encoding="utf-8")
    (outside / "session.mp3").write_bytes(b"secret audio")
    (outside / "session.json").write_text("{}", encoding="utf-8")
    (folder_copy / "linked.yaml").symlink_to(outside / "secret.yaml")
    sessions = folder_copy / ".voiceguide" / "sessions"
    (sessions / "linked-session").symlink_to(outside, target_is_directory=True)
    index = json.loads((sessions / "index.json").read_text(encoding="utf-8"))
    real = index["sessions"][0]
    index["sessions"].append(real | {"id": "linked-session"})
    (sessions / "index.json").write_text(json.dumps(index), encoding="utf-8")
    real_dir = sessions / real["id"]
    (real_dir / "cover.png").unlink()
    (real_dir / "cover.png").symlink_to(outside / "session.mp3")
    with TestClient(create_app(folder_copy)) as c:
        assert "file-linked" not in [r["id"] for r in c.get("/api/library").json()["routines"]]
        assert c.get("/edit/file-linked").status_code == 404
        assert c.post("/api/plan", json={"routine_id": "file-linked"}).status_code == 404
        assert c.get("/sessions/linked-session/audio.mp3").status_code == 404
        assert c.get("/play/linked-session").status_code == 404
        assert c.get(f"/sessions/{real['id']}/cover.png").status_code == 404
        assert c.get(f"/sessions/{real['id']}/audio.mp3").status_code == 200


# --- range requests ------------------------------------------------------------------------------


def test_range_requests(client: TestClient, rendered: dict[str, Any]) -> None:
    data = (rendered["dir"] / "session.mp3").read_bytes()
    url = f"/sessions/{rendered['id']}/audio.mp3"
    part = client.get(url, headers={"Range": "bytes=100-1123"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-1123/{len(data)}"
    assert part.headers["content-length"] == "1024" and part.content == data[100:1124]
    tail = client.get(url, headers={"Range": "bytes=-500"})
    assert tail.status_code == 206 and tail.content == data[-500:]
    assert tail.headers["content-range"] == f"bytes {len(data) - 500}-{len(data) - 1}/{len(data)}"
    rest = client.get(url, headers={"Range": f"bytes={len(data) - 10}-"})
    assert rest.status_code == 206 and rest.content == data[-10:]
    beyond = client.get(url, headers={"Range": f"bytes={len(data) + 10}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(data)}"


# --- access key --------------------------------------------------------------------------------------


def test_key_required(rendered: dict[str, Any]) -> None:
    app = create_app(rendered["folder"], key=KEY)
    sid = rendered["id"]
    with TestClient(app) as c:
        for path in ("/", "/feed.xml", f"/sessions/{sid}/audio.mp3", "/api/library", "/static/style.css", "/nope"):
            no_key = c.get(path)
            assert no_key.status_code == 401 and no_key.text == "401 Unauthorized", path
            assert "set-cookie" not in no_key.headers
            assert c.get(path, params={"key": KEY[:-1] + "x"}).status_code == 401
            assert c.get(path, params={"key": ""}).status_code == 401
        assert c.post("/api/plan", json={"routine_id": "builtin-psoas"}).status_code == 401
        c.cookies.set(KEY_COOKIE, "wrong")
        assert c.get("/").status_code == 401
        c.cookies.clear()
        first = c.get("/", params={"key": KEY})
        assert first.status_code == 200
        assert f"{KEY_COOKIE}={KEY}" in first.headers["set-cookie"] and "HttpOnly" in first.headers["set-cookie"]
        # The cookie now stands for the key: no query needed, on any route.
        assert c.get(f"/sessions/{sid}/audio.mp3").status_code == 200
        assert c.post("/api/plan", json={"routine_id": "builtin-psoas"}).status_code == 200
    with TestClient(create_app(rendered["folder"], key=KEY)) as fresh:
        assert fresh.get("/api/library").status_code == 401


def test_key_compared_in_constant_time(rendered: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    with TestClient(create_app(rendered["folder"], key=KEY)) as c:
        assert c.get("/", params={"key": "guess"}).status_code == 401
        assert c.get("/", params={"key": KEY}).status_code == 200
    assert (b"guess", KEY.encode()) in calls and (KEY.encode(), KEY.encode()) in calls


def test_without_key_no_key_is_asked(client: TestClient) -> None:
    assert client.get("/").status_code == 200 and "set-cookie" not in client.get("/", params={"key": "x"}).headers


# --- feed ------------------------------------------------------------------------------------------------


def test_feed(rendered: dict[str, Any]) -> None:
    feedparser = pytest.importorskip("feedparser")
    with TestClient(create_app(rendered["folder"])) as c:
        raw = c.get("/feed.xml")
        assert raw.headers["content-type"].startswith("application/rss+xml")
        feed = feedparser.parse(raw.content)
        assert not feed.bozo, feed.get("bozo_exception")
        assert feed.version == "rss20"
        [entry] = feed.entries
        assert entry.title == "Tiny test"
        [enclosure] = entry.enclosures
        audio = rendered["dir"] / "session.mp3"
        assert int(enclosure.length) == audio.stat().st_size and enclosure.type == "audio/mpeg"
        assert c.get(enclosure.href.removeprefix("http://testserver")).content == audio.read_bytes()
        assert entry.itunes_duration == str(round(rendered["plan"]["duration"]))
        assert entry.id == rendered["id"] and entry.guidislink is False
        assert entry.published_parsed is not None
        assert entry.image.href.endswith(f"/sessions/{rendered['id']}/cover.png")
        # The Podcasting 2.0 tags, read with a plain XML parser.
        item = ET.fromstring(raw.content).find("channel/item")
        assert item is not None
        chapters = item.find(f"{{{PODCAST}}}chapters")
        transcript = item.find(f"{{{PODCAST}}}transcript")
        assert chapters is not None and chapters.get("type") == "application/json+chapters"
        assert transcript is not None and transcript.get("type") == "text/vtt"
        body = c.get(chapters.get("url", "").removeprefix("http://testserver")).json()
        assert [{"startTime": ch["startTime"], "title": ch["title"]} for ch in body["chapters"]] == [
            {"startTime": ch["start"], "title": ch["title"]} for ch in rendered["plan"]["chapters"]]
        assert c.get(transcript.get("url", "").removeprefix("http://testserver")).text.startswith("WEBVTT")
        first_guid = entry.id
    with TestClient(create_app(rendered["folder"])) as again:  # another server instance over the same folder
        assert feedparser.parse(again.get("/feed.xml").content).entries[0].id == first_guid


def test_feed_urls_carry_the_key(rendered: dict[str, Any]) -> None:
    with TestClient(create_app(rendered["folder"], key=KEY)) as c:
        xml = c.get("/feed.xml", params={"key": KEY}).content
    root = ET.fromstring(xml)
    urls = [el.get("url") or el.get("href") or el.text for el in root.iter()
            if el.tag in {"link", "enclosure"} or el.get("url") or el.get("href")]
    assert len(urls) >= 6
    assert all(u and u.endswith(f"key={KEY}") for u in urls), urls


def test_shutdown_leaves_no_temporary_render(rendered: dict[str, Any]) -> None:
    assert not (rendered["folder"] / ".voiceguide" / "tmp").exists() or not any(
        (rendered["folder"] / ".voiceguide" / "tmp").iterdir())
