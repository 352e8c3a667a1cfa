# Over 350 lines, knowingly: one short handler per route of the JSON API and pages, in one place to audit.
"""The web app: library page, player, editor, feed and the JSON API (Starlette).

Files are served only by id from the server's own listings and index; a path
from the client is never joined to anything. With an access key (``--lan``)
every request must carry it, as ``?key=`` or as the cookie set after the first
keyed request; anything else gets a bare 401.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
from collections.abc import AsyncIterator
from functools import partial
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voiceguide.errors import VoiceguideError
from voiceguide.serve import library
from voiceguide.serve.feed import build_feed, chapters_json
from voiceguide.serve.jobs import JobQueue
from voiceguide.serve.store import AUDIO, COVER, PLAN, VTT, Store

MAX_ROUTINE_BYTES = 256 * 1024  # routine text sent by the editor or uploaded
MAX_BODY_BYTES = MAX_ROUTINE_BYTES + 64 * 1024  # the text plus the settings around it
KEY_COOKIE = "voiceguide_key"
STATIC = Path(__file__).with_name("static")
# The only static files there are: name -> media type. Nothing else under static/ is reachable.
STATIC_FILES = {
    "style.css": "text/css; charset=utf-8",
    "common.js": "text/javascript; charset=utf-8",
    "library.js": "text/javascript; charset=utf-8",
    "player.js": "text/javascript; charset=utf-8",
    "editor.js": "text/javascript; charset=utf-8",
}
PAGES = {"library": "library.html", "player": "player.html", "editor": "editor.html"}
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; script-src 'self'; "
     b"connect-src 'self'; frame-ancestors 'none'"),
]


class KeyGate:
    """ASGI middleware: with a key, every request needs it (query ``key`` or cookie); else 401 and nothing else."""

    def __init__(self, app: ASGIApp, key: str | None) -> None:
        self.app = app
        self.key = key.encode() if key else None

    def _matches(self, candidate: str | None) -> bool:
        if candidate is None or self.key is None:
            return False
        return hmac.compare_digest(candidate.encode("utf-8", "surrogateescape"), self.key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        if self.key is None:
            await self.app(scope, receive, secured)
            return
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        cookies = SimpleCookie()
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                with contextlib.suppress(Exception):
                    cookies.load(value.decode("latin-1"))
        from_query = self._matches(query.get("key"))
        from_cookie = KEY_COOKIE in cookies and self._matches(cookies[KEY_COOKIE].value)
        if not (from_query or from_cookie):
            await PlainTextResponse("401 Unauthorized", status_code=401)(scope, receive, secured)
            return
        if not from_query or from_cookie:
            await self.app(scope, receive, secured)
            return
        cookie = f"{KEY_COOKIE}={query['key']}; Path=/; HttpOnly; SameSite=Lax".encode("latin-1")

        async def with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie)]
            await secured(message)

        await self.app(scope, receive, with_cookie)


class Server:
    """Routes over one folder."""

    def __init__(self, folder: Path, key: str | None = None) -> None:
        self.store = Store(folder)
        self.jobs = JobQueue(self.store)
        self.key = key
        self._icon: bytes | None = None

    # --- helpers ------------------------------------------------------------

    def url(self, request: Request, path: str) -> str:
        base = str(request.base_url).rstrip("/")
        if self.key:
            path += ("&" if "?" in path else "?") + "key=" + quote(self.key, safe="")
        return base + path

    @staticmethod
    async def body_json(request: Request) -> dict[str, Any]:
        """The request body as a JSON object, refusing anything over MAX_BODY_BYTES (413)."""
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            raise HTTPException(413, "request too large")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise HTTPException(413, "request too large")
            chunks.append(chunk)
        try:
            data = json.loads(b"".join(chunks) or b"{}")
        except ValueError:
            raise HTTPException(400, "body must be JSON") from None
        if not isinstance(data, dict):
            raise HTTPException(400, "body must be a JSON object")
        return data

    def routine_from(self, data: dict[str, Any]) -> tuple[Any, str]:
        """The routine a request names: ``text`` (validated YAML) or ``routine_id``."""
        text = data.get("text")
        if text is not None:
            if not isinstance(text, str):
                raise HTTPException(400, "text must be a string")
            if len(text.encode("utf-8", "surrogatepass")) > MAX_ROUTINE_BYTES:
                raise HTTPException(413, f"routine text is larger than {MAX_ROUTINE_BYTES // 1024} KB")
            source = str(data.get("source") or "routine.yaml")
            source = library.safe_stem(source.removesuffix(".yaml")) + ".yaml"
            return library.parse_routine(text, source), source.removesuffix(".yaml")
        entry = self.store.routine(str(data.get("routine_id", "")))
        if entry is None:
            raise HTTPException(404, "no such routine")
        return entry.load(), entry.name

    def page(self, name: str) -> Response:
        return FileResponse(STATIC / PAGES[name], media_type="text/html; charset=utf-8",
                            headers={"cache-control": "no-cache"})

    # --- pages ----------------------------------------------------------------

    async def library_page(self, request: Request) -> Response:
        return self.page("library")

    async def player_page(self, request: Request) -> Response:
        if self.store.session(request.path_params["session_id"]) is None:
            raise HTTPException(404)
        return self.page("player")

    async def editor_page(self, request: Request) -> Response:
        if self.store.routine(request.path_params["routine_id"]) is None:
            raise HTTPException(404)
        return self.page("editor")

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC_FILES:
            raise HTTPException(404)
        return FileResponse(STATIC / name, media_type=STATIC_FILES[name], headers={"cache-control": "no-cache"})

    async def icon(self, request: Request) -> Response:
        if self._icon is None:
            self._icon = await run_in_threadpool(library.cover_png, "voiceguide")
        return Response(self._icon, media_type="image/png", headers={"cache-control": "max-age=86400"})

    # --- sessions -----------------------------------------------------------------

    def _file(self, request: Request, name: str) -> Path:
        path = self.store.session_file(request.path_params["session_id"], name)
        if path is None:
            raise HTTPException(404)
        return path

    async def audio(self, request: Request) -> Response:
        return FileResponse(self._file(request, AUDIO), media_type="audio/mpeg")

    async def plan_json(self, request: Request) -> Response:
        return FileResponse(self._file(request, PLAN), media_type="application/json")

    async def chapters(self, request: Request) -> Response:
        plan = json.loads(self._file(request, PLAN).read_text(encoding="utf-8"))
        return JSONResponse(chapters_json(plan), media_type="application/json+chapters")

    async def transcript(self, request: Request) -> Response:
        return FileResponse(self._file(request, VTT), media_type="text/vtt; charset=utf-8")

    async def cover(self, request: Request) -> Response:
        return FileResponse(self._file(request, COVER), media_type="image/png")

    async def feed(self, request: Request) -> Response:
        body = build_feed(self.store.sessions(), partial(self.url, request))
        return Response(body, media_type="application/rss+xml; charset=utf-8")

    # --- API ------------------------------------------------------------------------

    async def api_library(self, request: Request) -> Response:
        routines = await run_in_threadpool(lambda: [self.store.outline(r) for r in self.store.routines()])
        return JSONResponse({"routines": routines, "sessions": self.store.sessions(), "lan": bool(self.key),
                             "feed": self.url(request, "/feed.xml")})

    async def api_session(self, request: Request) -> Response:
        session = self.store.session(request.path_params["session_id"])
        if session is None:
            raise HTTPException(404)
        return JSONResponse(session)

    async def api_routine(self, request: Request) -> Response:
        entry = self.store.routine(request.path_params["routine_id"])
        if entry is None:
            raise HTTPException(404)

        def outline() -> dict[str, Any]:
            info = library.routine_outline(entry.load())
            text = entry.path.read_text(encoding="utf-8") if entry.path else None
            return info | {"id": entry.id, "file": entry.name, "builtin": entry.builtin, "text": text}

        return JSONResponse(await run_in_threadpool(outline))

    async def api_plan(self, request: Request) -> Response:
        data = await self.body_json(request)

        def plan() -> dict[str, Any]:
            routine, _ = self.routine_from(data)
            return library.plan_dict(routine, library.options_from(data.get("settings")))

        return JSONResponse(await run_in_threadpool(plan))

    async def api_render(self, request: Request) -> Response:
        data = await self.body_json(request)

        def prepare() -> tuple[Any, Any, str]:
            routine, name = self.routine_from(data)
            options = library.options_from(data.get("settings"))
            library.plan_dict(routine, options)  # bad settings fail now, not in the worker
            return routine, options, name

        routine, options, name = await run_in_threadpool(prepare)
        job = self.jobs.submit(routine, options, {"routine_name": routine.name, "routine_file": name,
                                                  "settings": data.get("settings") or {}})
        return JSONResponse(job.snapshot(), status_code=202)

    async def api_job(self, request: Request) -> Response:
        job = self.jobs.jobs.get(request.path_params["job_id"])
        if job is None:
            raise HTTPException(404)
        return JSONResponse(job.snapshot())

    async def api_job_events(self, request: Request) -> Response:
        job = self.jobs.jobs.get(request.path_params["job_id"])
        if job is None:
            raise HTTPException(404)

        async def events() -> Any:
            seen = -1
            while True:
                if job.version != seen:
                    seen = job.version
                    snapshot = job.snapshot()
                    kind = snapshot["state"] if snapshot["state"] in {"done", "error", "cancelled"} else "progress"
                    yield f"event: {kind}\ndata: {json.dumps(snapshot)}\n\n"
                    if kind != "progress":
                        return
                else:
                    yield ": keep-alive\n\n"
                if await request.is_disconnected():
                    return
                await asyncio.to_thread(self.jobs.wait_change, job, seen, 5.0)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"cache-control": "no-cache", "x-accel-buffering": "no"})

    async def api_save(self, request: Request) -> Response:
        data = await self.body_json(request)
        name = str(data.get("name") or "")
        stem = library.safe_stem(name.removesuffix(".yaml"))
        if not name or stem != name.removesuffix(".yaml") or stem.startswith("."):
            raise HTTPException(400, "name: use letters, digits, '-', '_' and '.' only (it becomes NAME.yaml)")
        target = self.store.folder / f"{stem}.yaml"

        def save() -> dict[str, Any]:
            routine, _ = self.routine_from(data)
            text = library.routine_yaml(routine, data.get("settings") or {})
            # What is written must load and plan: a hold baked shorter than a cue is an error in a file.
            library.plan_dict(library.parse_routine(text, target.name), library.options_from({}))
            if target.is_symlink() or (target.exists() and not data.get("overwrite")):
                raise HTTPException(409, f"{target.name} exists; save with overwrite to replace it")
            temp = target.with_name(f".{target.name}.part")
            temp.write_text(text, encoding="utf-8")
            temp.replace(target)
            entry = next(r for r in self.store.routines() if r.path == target)
            return {"id": entry.id, "file": target.name}

        return JSONResponse(await run_in_threadpool(save), status_code=201)


async def _voiceguide_error(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=400)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
    return PlainTextResponse(f"{exc.status_code} {exc.detail}", status_code=exc.status_code)


async def _value_error(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": f"bad settings: {exc}"}, status_code=400)


def create_app(folder: Path | str = ".", key: str | None = None) -> ASGIApp:
    """The ASGI app serving ``folder``; with ``key`` every request must carry it."""
    server = Server(Path(folder), key)
    server.store.clean_tmp()  # whatever an earlier, killed run left half-done
    routes = [
        Route("/", server.library_page),
        Route("/play/{session_id}", server.player_page),
        Route("/edit/{routine_id}", server.editor_page),
        Route("/static/{name}", server.static),
        Route("/icon.png", server.icon),
        Route("/feed.xml", server.feed),
        Route("/sessions/{session_id}/audio.mp3", server.audio),
        Route("/sessions/{session_id}/plan.json", server.plan_json),
        Route("/sessions/{session_id}/chapters.json", server.chapters),
        Route("/sessions/{session_id}/transcript.vtt", server.transcript),
        Route("/sessions/{session_id}/cover.png", server.cover),
        Route("/api/library", server.api_library),
        Route("/api/sessions/{session_id}", server.api_session),
        Route("/api/routines/{routine_id}", server.api_routine),
        Route("/api/plan", server.api_plan, methods=["POST"]),
        Route("/api/render", server.api_render, methods=["POST"]),
        Route("/api/save", server.api_save, methods=["POST"]),
        Route("/api/jobs/{job_id}", server.api_job),
        Route("/api/jobs/{job_id}/events", server.api_job_events),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(server.jobs.stop)  # cancels a running render; its temporary folder goes

    app = Starlette(
        routes=routes,
        exception_handlers={VoiceguideError: _voiceguide_error, HTTPException: _http_error,
                            ValueError: _value_error, TypeError: _value_error},
        lifespan=lifespan,
    )
    app.state.server = server
    return KeyGate(app, key)
