"""The FastAPI application: OpenAI's transcription endpoint, the model list, health and metrics.

``POST /v1/audio/transcriptions`` takes OpenAI's multipart form: ``file``, ``model`` (any
value: one model is served), ``language``, ``prompt`` (the context of models that take one),
``response_format`` (json, text, srt, vtt, verbose_json) and ``temperature`` (ignored:
decoding is the deterministic search ``asr evaluate`` uses). Errors are OpenAI's JSON shape.
With an API key, the ``/v1`` routes need ``Authorization: Bearer KEY``; ``/``, ``/health``
and ``/metrics`` stay open (health checks and scrapers).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import logging
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from asr.errors import ASRError
from asr.longform.subtitles import Cue, to_srt, to_vtt
from asr.models.base import ASRModel
from asr.models.spec import DecodeOptions
from asr.serve.batcher import Batcher, Closed, Job
from asr.serve.errors import ApiError
from asr.serve.metrics import Metrics
from asr.serve.uploads import Audio, VADPool, read_audio, receive_upload

log = logging.getLogger(__name__)

FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
RETRY_BUSY_SECONDS = 1
RETRY_CLOSING_SECONDS = 5
PAGE = Path(__file__).with_name("page.html")


@dataclass
class ServeSettings:
    """Batching and limits (``asr serve``'s flags)."""

    batch_window_ms: float = 20.0
    max_batch: int = 16
    max_upload_mb: float = 25.0  # OpenAI's own limit
    max_audio_seconds: float = 3 * 3600.0
    max_queue: int = 64
    api_key: str | None = None
    tmp_dir: Path | None = None  # None: a fresh folder in the system's, removed at shutdown


class Service:
    """What the routes share: the batcher, metrics, limits and the temp folder."""

    def __init__(
        self, model: ASRModel, options: DecodeOptions, model_id: str, settings: ServeSettings
    ) -> None:
        self.model, self.model_id, self.settings = model, model_id, settings
        self.created = int(time.time())
        self.in_progress = 0
        self.closing = False
        self.metrics = Metrics(
            queue_length=lambda: self.batcher.queue_length, in_progress=lambda: self.in_progress
        )
        self.batcher = Batcher(
            model, options, settings.max_batch, settings.batch_window_ms / 1000, self.metrics
        )
        self.vads = VADPool()
        self.own_tmp = settings.tmp_dir is None
        self.tmp = Path(tempfile.mkdtemp(prefix="asr-serve-")) if self.own_tmp else Path(settings.tmp_dir)
        self.tmp.mkdir(parents=True, exist_ok=True)

    def check_key(self, request: Request) -> None:
        key = self.settings.api_key
        if key is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), key.encode()):
            raise ApiError(
                401, "missing or wrong API key: send 'Authorization: Bearer KEY'", code="invalid_api_key"
            )

    def admit(self) -> None:
        if self.closing:
            raise _shutting_down()
        if self.in_progress >= self.settings.max_queue:
            raise ApiError(429, f"the server is busy ({self.in_progress} requests queued); retry later",
                           kind="rate_limit_error", code="queue_full", retry_after=RETRY_BUSY_SECONDS)  # fmt: skip


def _shutting_down() -> ApiError:
    return ApiError(503, "the server is shutting down", kind="server_error", code="shutting_down",
                    retry_after=RETRY_CLOSING_SECONDS)  # fmt: skip


def _error_response(err: ApiError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers())


def _fields(fields: dict[str, str]) -> tuple[str, str | None, str | None]:
    response_format = fields.get("response_format", "json").strip() or "json"
    if response_format not in FORMATS:
        raise ApiError(400, f"response_format {response_format!r} is not one of {', '.join(FORMATS)}",
                       param="response_format")  # fmt: skip
    language = fields.get("language", "").strip() or None
    prompt = fields.get("prompt", "").strip() or None
    return response_format, language, prompt


def render(response_format: str, audio: Audio, texts: list[str], language: str | None) -> Response:
    """The answer in the format asked for; segments are the decoded pieces."""
    cues = [Cue(p.start, p.end, t) for p, t in zip(audio.pieces, texts, strict=True)]
    text = texts[0] if not audio.long_form else "".join(t.strip() for t in texts)
    if response_format == "json":
        return JSONResponse({"text": text})
    if response_format == "text":
        return PlainTextResponse(text + "\n")
    if response_format == "srt":
        return PlainTextResponse(to_srt(cues), media_type="application/x-subrip")
    if response_format == "vtt":
        return PlainTextResponse(to_vtt(cues), media_type="text/vtt")
    segments = [
        {"id": n, "seek": 0, "start": round(c.start, 3), "end": round(c.end, 3), "text": c.text,
         "tokens": [], "temperature": 0.0}
        for n, c in enumerate(cues)
    ]  # fmt: skip
    body = {"task": "transcribe", "language": language or "", "duration": round(audio.duration, 3),
            "text": text, "segments": segments}  # fmt: skip
    return JSONResponse(body)


class _CountRequests:
    """ASGI middleware: every answer counted by route and status in ``asr_serve_requests_total``."""

    def __init__(self, app: Any, service: Service, paths: set[str]) -> None:
        self.app, self.service, self.paths = app, service, paths

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"] if scope["path"] in self.paths else "other"

        async def counting_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                self.service.metrics.requests.inc(path=path, status=str(message["status"]))
            await send(message)

        await self.app(scope, receive, counting_send)


def create_app(model: ASRModel, options: DecodeOptions, model_id: str, settings: ServeSettings) -> FastAPI:
    """The application; its lifespan starts the decoder and, at shutdown, lets it finish the queue."""
    service = Service(model, options, model_id, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.batcher.start()
        try:
            yield
        finally:
            service.closing = True
            await asyncio.to_thread(service.batcher.close)
            if service.own_tmp:
                shutil.rmtree(service.tmp, ignore_errors=True)

    app = FastAPI(title="cs-mage-asr", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.service = service

    @app.exception_handler(ApiError)
    async def api_error(request: Request, err: ApiError) -> JSONResponse:
        return _error_response(err)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        return _error_response(ApiError(err.status_code, str(err.detail)))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
        return _error_response(ApiError(400, str(err)))

    @app.exception_handler(Exception)
    async def server_error(request: Request, err: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=err)
        return _error_response(ApiError(500, f"internal error: {type(err).__name__}", kind="server_error"))

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "closing" if service.closing else "ok", "model": model_id,
                "queue": service.batcher.queue_length, "in_progress": service.in_progress}  # fmt: skip

    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(service.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        return HTMLResponse(PAGE.read_text(encoding="utf-8").replace("{{MODEL}}", html.escape(model_id)))

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        service.check_key(request)
        return {"object": "list", "data": [_model_card(service)]}

    @app.get("/v1/models/{name:path}")
    async def one_model(name: str, request: Request) -> dict[str, Any]:
        service.check_key(request)
        if name != model_id:
            raise ApiError(404, f"model {name!r} is not served here (this server serves {model_id!r})",
                           param="model", code="model_not_found")  # fmt: skip
        return _model_card(service)

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(request: Request) -> Response:
        service.check_key(request)
        service.admit()
        service.in_progress += 1
        start = time.perf_counter()
        try:
            return await _transcribe(service, request)
        finally:
            service.in_progress -= 1
            service.metrics.latency.observe(time.perf_counter() - start)

    app.add_middleware(_CountRequests, service=service,
                       paths={"/", "/health", "/metrics", "/v1/models", "/v1/audio/transcriptions"})  # fmt: skip
    return app


def _model_card(service: Service) -> dict[str, Any]:
    return {"id": service.model_id, "object": "model", "created": service.created, "owned_by": "cs-mage-asr"}


async def _transcribe(service: Service, request: Request) -> Response:
    settings = service.settings
    async with receive_upload(request, service.tmp, round(settings.max_upload_mb * 1e6)) as upload:
        response_format, language, prompt = _fields(upload.fields)
        audio = await asyncio.to_thread(
            read_audio, upload, settings.max_audio_seconds, service.model.max_input_seconds, service.vads
        )
    try:
        job = Job([p.wave for p in audio.pieces], language=language, context=prompt)
        texts = await asyncio.wrap_future(service.batcher.submit(job))
    except Closed as err:
        raise _shutting_down() from err
    except ASRError as err:  # a setting the model refuses (say, a language it does not know)
        raise ApiError(400, str(err)) from err
    except Exception as err:
        log.exception("decoding %s failed", upload.filename)
        raise ApiError(500, f"decoding failed: {type(err).__name__}", kind="server_error") from err
    service.metrics.audio_seconds.inc(audio.duration)
    log.info("transcribed %s: %.1f s of audio in %d pieces (%s)", upload.filename, audio.duration,
             len(audio.pieces), response_format)  # fmt: skip
    return render(response_format, audio, texts, language or service.batcher.options.language)
