"""Fixtures for the web app (imported by the serve tests; not a conftest, whose module name the top-level one owns).

A folder with a tiny routine, rendered once (real engine) for the whole session.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient` is deprecated")
pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402

from voiceguide.serve.app import create_app  # noqa: E402

TINY = """\
# Two short stretches, for tests.
name: Tiny test
intro: Hello.
closing: Done.
defaults:
  hold: 4
  rest: 3
  prepare: 1
  switch: 1
  countdown: 0
stretches:
  - name: Reach up
    hold: 5
  - name: Side bend
    sides: [left, right]
    hold: 4
"""


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A folder with tiny.yaml and one session rendered from it through the app (POST /api/render + SSE)."""
    folder = tmp_path_factory.mktemp("served")
    (folder / "tiny.yaml").write_text(TINY, encoding="utf-8")
    previous = os.environ.get("VOICEGUIDE_CACHE_DIR")
    os.environ["VOICEGUIDE_CACHE_DIR"] = str(tmp_path_factory.mktemp("serve-cache"))
    try:
        with TestClient(create_app(folder)) as client:
            job = client.post("/api/render", json={"routine_id": "file-tiny", "settings": {}})
            assert job.status_code == 202, job.text
            stream = client.get(f"/api/jobs/{job.json()['id']}/events")  # ends when the job does
            assert stream.headers["content-type"].startswith("text/event-stream")
            last = [line for line in stream.text.splitlines() if line.startswith("data: ")][-1]
            done = json.loads(last.removeprefix("data: "))
            assert done["state"] == "done", done
            events_text = stream.text
    finally:
        if previous is None:
            os.environ.pop("VOICEGUIDE_CACHE_DIR", None)
        else:
            os.environ["VOICEGUIDE_CACHE_DIR"] = previous
    session_dir = folder / ".voiceguide" / "sessions" / done["session_id"]
    plan = json.loads((session_dir / "session.json").read_text(encoding="utf-8"))
    yield {"folder": folder, "id": done["session_id"], "dir": session_dir, "plan": plan, "events": events_text}


@pytest.fixture
def folder_copy(rendered: dict[str, Any], tmp_path: Path) -> Path:
    """A copy of the rendered folder that a test may damage."""
    target = tmp_path / "copy"
    shutil.copytree(rendered["folder"], target, symlinks=True)
    return target


@pytest.fixture
def client(rendered: dict[str, Any]) -> Iterator[TestClient]:
    with TestClient(create_app(rendered["folder"])) as c:
        yield c
