"""The HTTP API and the web page: `impasto serve`, or `create_app(...)` under any ASGI server.

POST /api/jobs takes a photo or a short video (and a painting, or a built-in style's name)
and queues a job; GET /api/jobs/{id} tells how it goes, /events streams that as
Server-Sent Events, /result is the picture or the video. Uploads are decoded here, before
a job is queued, so a bad file is a 4xx at once; the type is what the bytes decode to,
never the file name.
"""

import asyncio
import hmac
import io
import json
from collections.abc import Sequence
from contextlib import asynccontextmanager
from dataclasses import fields
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, create_model
from starlette.datastructures import UploadFile as Upload

from .._version import __version__
from ..errors import ImageError, ImageTooLarge, ImpastoError, OptionError, VideoError
from ..io.images import load_image
from ..options import Media, OptimizeOptions, PaintOptions, default_of, spec_of
from .guards import BodyLimit, PixelBudget, SameSite
from .jobs import FINISHED, JobQueue, JobStore, Limits, QueueFull, StoreBusy, prepare_folder
from .options import OPTIMIZE_OPTIONS, VIDEO_METHODS, VIDEO_OPTIONS

STATIC = Path(__file__).parent / "static"
EVENT_POLL_SECONDS = 0.05  # how often an event stream looks at its job
RETRY_AFTER_SECONDS = 5
# The painting options a job takes: those every method shares, optimize's own and a
# video's (serve.options); a job records those that apply to it.
WEB_OPTIONS = (*(f.name for f in fields(PaintOptions)), *OPTIMIZE_OPTIONS)
UPLOADS = ("content", "style_image")  # the job form's files (`create_job`)


class Job(BaseModel):
    id: str
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    method: Literal["fast", "arbitrary", "optimize"]
    options: dict
    progress: float
    losses: dict[str, float] | None = None
    error: str | None = None
    created: float
    started: float | None = None
    finished: float | None = None
    queued_seconds: float | None = None
    run_seconds: float | None = None
    result: str | None = None  # URL of the picture (or video), once done


class Style(BaseModel):
    name: str
    thumbnail: str


class Health(BaseModel):
    status: Literal["ok", "unhealthy"]
    version: str
    workers: int
    queued: int


def _readable(error: dict) -> dict:
    """One of FastAPI's validation errors, said for a person where a field got the wrong
    kind of value: a file where text goes (a painting sent as `style`, the built-in's
    name, instead of `style_image`), named rather than dumped with its internals; text
    where a file goes."""
    field, given = (error.get("loc") or [None])[-1], error.get("input")
    if isinstance(given, Upload):
        files = " and ".join(UPLOADS)
        msg = f"{field} takes a value, not a file; files go in {files}"
        return {**error, "msg": msg, "input": given.filename}
    if field in UPLOADS and isinstance(given, str):
        return {**error, "msg": f"{field} takes a file, not text"}
    return error


def _job_out(job: dict) -> Job:
    started, finished = job["started"], job["finished"]
    return Job(
        **{k: v for k, v in job.items() if k in Job.model_fields},
        queued_seconds=round(started - job["created"], 3) if started else None,
        run_seconds=round(finished - started, 3) if started and finished else None,
        result=f"/api/jobs/{job['id']}/result" if job["state"] == "done" else None,
    )


def create_app(
    data_dir: str | Path,
    *,
    workers: int = 1,
    token: str | None = None,
    limits: Limits | None = None,
    device: str = "auto",
    weights: str | None = None,
    fresh: bool = False,
    hosts: Sequence[str] | None = None,
    store: str | None = None,
) -> FastAPI:
    """The web app; its job records and results live under `data_dir`, run by `workers`
    threads, or with `store` (postgresql://…) in a database that API servers and
    `impasto worker`s on many machines share. `fresh` keeps an unreadable job store aside
    and starts a new one. `hosts` (host:port names the server answers to) guards a server
    without a token against other sites' pages: a request for another Host (DNS
    rebinding) or a POST or DELETE from another Origin is refused."""
    limits = limits or Limits()
    budget = PixelBudget(limits.pixels)  # pixels decoded at once: uploads and workers
    if store is None:  # a bad folder or job store is an error now, not at the first request
        prepare_folder(data_dir)
        JobStore(Path(data_dir) / "jobs.sqlite3", fresh=fresh).close()
    else:
        from .shared import SharedStore

        SharedStore(store).close()  # reachable, its tables made

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Each run of the server opens the store and starts the workers afresh.
        if store is None:
            app.state.jobs = JobQueue(data_dir, workers, limits, device, weights, decoding=budget)
        else:
            from .shared import SharedQueue

            app.state.jobs = SharedQueue(store, limits)
        app.state.jobs.start()
        yield
        await asyncio.to_thread(app.state.jobs.stop)

    # No /docs or /redoc: FastAPI's pages load their scripts from a CDN. The schema is
    # at /openapi.json for any OpenAPI viewer.
    app = FastAPI(
        docs_url=None,
        redoc_url=None,
        title="impasto",
        version=__version__,
        lifespan=lifespan,
        description="Neural style transfer: fast networks, one-pass arbitrary "
        "style and optimization, as jobs with live progress.",
    )

    def authorize(request: Request) -> None:
        if token is None:
            return
        header = request.headers.get("authorization", "")
        given = header.removeprefix("Bearer ") if header.startswith("Bearer ") else None
        given = given or request.query_params.get("token")  # <img> and EventSource send no headers
        if not given or not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(401, "a valid token is required", {"WWW-Authenticate": "Bearer"})

    if token is None and hosts:
        app.add_middleware(SameSite, hosts=tuple(hosts))
    app.add_middleware(BodyLimit, limit=2 * limits.upload_bytes + 2**16)

    async def retry_later(request: Request, exc: Exception):
        """A full queue, or a job store locked past its patience: 503, come back later."""
        detail = f"the queue is full ({exc})" if isinstance(exc, QueueFull) else str(exc)
        return JSONResponse(
            {"detail": f"{detail}; retry later"},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    app.add_exception_handler(QueueFull, retry_later)
    app.add_exception_handler(StoreBusy, retry_later)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        errors = [_readable(e) for e in exc.errors()]  # FastAPI's 422, each error readable
        return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)

    @app.exception_handler(ImpastoError)
    async def impasto_error(request: Request, exc: ImpastoError):
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.get("/healthz", tags=["server"], responses={503: {"model": Health}})
    def health(request: Request):
        jobs = request.app.state.jobs
        alive = jobs.alive()  # starts again any worker that died; shared: on any machine
        # A server of the shared store is healthy while it reaches the database: workers
        # elsewhere come and go, and the jobs wait for them.
        ok = alive > 0 or workers == 0 or store is not None
        report = Health(
            status="ok" if ok else "unhealthy",
            version=__version__,
            workers=alive,
            queued=jobs.waiting(),
        )
        return JSONResponse(report.model_dump(), status_code=200 if ok else 503)

    for router in (submissions(limits, budget), views, styles):
        app.include_router(router, dependencies=[Depends(authorize)])
    app.mount("/", StaticFiles(directory=STATIC, html=True), name="page")
    return app


def _queue(request: Request) -> JobQueue:
    return request.app.state.jobs


Queue = Annotated[JobQueue, Depends(_queue)]


def submissions(limits: Limits, decoding: PixelBudget) -> APIRouter:
    """POST /api/jobs, with a form made for `limits`; uploads are decoded within the
    pixel budget all requests share."""
    router = APIRouter(tags=["jobs"])
    JobForm = job_form(limits)  # noqa: N806 (a class, made for these limits)

    def read(upload: UploadFile, what: str) -> bytes:
        data = upload.file.read(limits.upload_bytes + 1)
        if len(data) > limits.upload_bytes:
            limit = limits.upload_bytes / 2**20
            raise HTTPException(413, f"{what}: over the {limit:g} MB upload limit")
        return data

    def check_image(data: bytes, what: str) -> None:
        with decoding.hold(data, what):  # decodes: the type is what it is
            load_image(data, max_pixels=limits.pixels, name=what)

    def read_image(upload: UploadFile, what: str) -> bytes:
        data = read(upload, what)
        try:
            check_image(data, what)
        except ImageError as e:
            raise HTTPException(413 if isinstance(e, ImageTooLarge) else 400, str(e)) from None
        return data

    def read_content(upload: UploadFile, method: str) -> tuple[bytes, dict | None]:
        """The photo, or a short video for the one-pass methods: its bytes, and the
        video's frame count and length (None for a photo)."""
        data = read(upload, "content")
        try:
            check_image(data, "content")
            return data, None
        except ImageTooLarge as e:
            raise HTTPException(413, str(e)) from None
        except ImageError as e:
            video = probe_video(data, limits.video_seconds)
            if video is None:
                raise HTTPException(400, str(e)) from None
        if method not in VIDEO_METHODS:
            raise HTTPException(400, f"{method} paints photos; a video takes fast or arbitrary")
        if video["seconds"] > limits.video_seconds:  # first: a long one is not decoded
            raise HTTPException(
                413,
                f"content: the video lasts {video['seconds']:.1f} s; this "
                f"server takes videos of at most {limits.video_seconds:g} s",
            )
        if video["width"] * video["height"] > limits.pixels:
            raise HTTPException(
                413,
                f"content: frames of {video['width']}x{video['height']} px "
                f"are over the limit of {limits.pixels} pixels",
            )
        if video["frames"] == 0:
            raise HTTPException(400, "content: the video has no frames")
        return data, {"frames": video["frames"], "seconds": round(video["seconds"], 3)}

    @router.post("/api/jobs", status_code=202, responses={400: {}, 401: {}, 413: {}, 503: {}})
    def create_job(
        jobs: Queue,
        content: Annotated[UploadFile, File(description="the photo, or a short video")],
        form: Annotated[JobForm, Form()],
        style_image: Annotated[UploadFile | None, File(description="a painting")] = None,
    ) -> Job:
        method = form.method
        if method == "fast":
            names = builtin_styles()
            if form.style is None:
                raise HTTPException(400, f"fast jobs need a style, one of: {', '.join(names)}")
            if form.style not in names:
                known = ", ".join(names)
                raise HTTPException(400, f"unknown style {form.style!r}; built-ins: {known}")
        elif style_image is None:
            raise HTTPException(400, f"{method} jobs need a style_image (a painting)")
        photo, video = read_content(content, method)
        painting = read_image(style_image, "style_image") if method != "fast" else None
        unused = {"method", *(() if video else VIDEO_OPTIONS)}
        if method != "optimize":
            unused.update(OPTIMIZE_OPTIONS)
        options = form.model_dump(exclude=unused)
        options["style"] = form.style if method == "fast" else None
        if video is not None:
            options["video"] = video
        job_id = jobs.submit(method, options, photo, painting)
        return _job_out(jobs.job(job_id))

    return router


def probe_video(data: bytes, longest: float) -> dict | None:
    """A video's frames, size and length (not decoded if its header says it lasts over
    `longest` s), or None if `data` is no video this server reads (or it has no PyAV)."""
    try:
        from ..io.video import probe

        return probe(data, longest)
    except (OptionError, VideoError):
        return None


views = APIRouter(tags=["jobs"])  # a job, as it goes and when done


def _find(jobs: JobQueue, job_id: str) -> dict:
    job = jobs.job(job_id)
    if job is None:
        raise HTTPException(404, "no such job")
    return job


@views.get("/api/jobs/{job_id}", responses={404: {}})
def get_job(jobs: Queue, job_id: str) -> Job:
    return _job_out(_find(jobs, job_id))


@views.delete("/api/jobs/{job_id}", responses={404: {}})
def cancel_job(jobs: Queue, job_id: str) -> Job:
    _find(jobs, job_id)
    return _job_out(jobs.cancel(job_id))


def _picture(found: Path | bytes, media_type: str, **headers: str) -> Response:
    """A picture from the embedded store's folder (a file) or the shared store (bytes)."""
    if isinstance(found, Path):
        return FileResponse(found, media_type=media_type, headers=headers)
    return Response(found, media_type=media_type, headers=headers)


@views.get(
    "/api/jobs/{job_id}/result", response_class=FileResponse, responses={404: {}, 409: {}, 410: {}}
)
def get_result(jobs: Queue, job_id: str):
    job = _find(jobs, job_id)
    if job["state"] != "done":
        raise HTTPException(409, f"the job is {job['state']}, no result")
    found = jobs.result(job_id)
    if found is None:
        raise HTTPException(410, "the result is gone from the server's job store")
    kind, ext = ("video/mp4", "mp4") if job["options"].get("video") else ("image/png", "png")
    disposition = f'attachment; filename="impasto-{job_id}.{ext}"'
    return _picture(found, kind, **{"Content-Disposition": disposition})


@views.get("/api/jobs/{job_id}/snapshot", response_class=FileResponse, responses={404: {}})
def get_snapshot(jobs: Queue, job_id: str):
    _find(jobs, job_id)
    found = jobs.snapshot(job_id)
    if found is None:
        raise HTTPException(404, "no snapshot yet")
    return _picture(found, "image/jpeg", **{"Cache-Control": "no-store"})


@views.get("/api/jobs/{job_id}/events", response_class=StreamingResponse, responses={404: {}})
async def job_events(jobs: Queue, job_id: str, request: Request):
    """Server-Sent Events: `progress` as the job runs, `snapshot` (optimize) when a
    new picture of the forming image is ready, and a last `done`, `failed` or
    `cancelled` event with the job."""
    _find(jobs, job_id)

    async def stream():
        last, shown = None, 0
        while not await request.is_disconnected():
            job = jobs.job(job_id)
            out = _job_out(job).model_dump_json()
            if job.get("snapshots", 0) > shown:
                shown = job["snapshots"]
                url = f"/api/jobs/{job_id}/snapshot?n={shown}"
                yield f"event: snapshot\ndata: {json.dumps({'url': url})}\n\n"
            if job["state"] in FINISHED:
                yield f"event: {job['state']}\ndata: {out}\n\n"
                return
            if out != last:
                yield f"event: progress\ndata: {out}\n\n"
                last = out
            await asyncio.sleep(EVENT_POLL_SECONDS)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )


styles = APIRouter(tags=["styles"])  # the built-in styles, for the page


@styles.get("/api/styles")
def list_styles() -> list[Style]:
    return [Style(name=n, thumbnail=f"/api/styles/{n}/thumbnail") for n in builtin_styles()]


@styles.get("/api/styles/{name}/thumbnail", response_class=Response, responses={404: {}})
def style_thumbnail(name: str):
    if name not in builtin_styles():
        raise HTTPException(404, "no such style")
    return Response(
        thumbnail(name), media_type="image/png", headers={"Cache-Control": "max-age=86400"}
    )


def job_form(limits: Limits) -> type[BaseModel]:
    """The job form: the method, a built-in style, and the painting options the web app
    offers (a video's consistency too), made from their declarations (impasto.options:
    help, default, bounds, choices), with the server's limits on size and iterations on
    top."""
    caps = {"size": limits.side, "iterations": limits.iterations}
    made: dict = {
        "method": (Literal["fast", "arbitrary", "optimize"], "fast"),
        "style": (str | None, Field(None, description="a built-in style (fast)")),
    }
    offered = [f for f in fields(OptimizeOptions) if f.name in WEB_OPTIONS]
    offered += [f for f in fields(Media) if f.name in VIDEO_OPTIONS]
    for f in offered:
        spec, default = spec_of(f), default_of(f)
        kind = Literal[spec.choices] if spec.choices else type(default)
        high = min((h for h in (spec.high, caps.get(f.name)) if h is not None), default=None)
        if high is not None:
            default = min(default, high)
        if default is None:
            kind = kind | None
        numbers = {"ge": spec.low, "le": high, "gt": spec.above} if kind in (int, float) else {}
        if kind is float:
            numbers["allow_inf_nan"] = False
        made[f.name] = (kind, Field(default, description=spec.help, **numbers))
    return create_model("JobForm", **made)


@lru_cache(maxsize=1)
def _fast():
    from ..methods.feedforward import FastStylizer

    return FastStylizer("styles", "cpu")


def builtin_styles() -> tuple[str, ...]:
    return _fast().styles


@lru_cache(maxsize=64)
def thumbnail(name: str) -> bytes:
    """A small picture of a built-in style: the network's painting of a drawn landscape
    (the paintings themselves do not ship with impasto)."""
    image = _fast().run(_landscape(), name, size=160).image
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@lru_cache(maxsize=1)
def _landscape():
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (160, 120))
    draw = ImageDraw.Draw(image)
    for y in range(120):  # sky from deep blue to pale at the horizon
        t = y / 70
        sky = (int(60 + 150 * t), int(110 + 110 * t), int(200 + 40 * t))
        draw.line([(0, y), (160, y)], fill=sky)
    draw.ellipse((108, 14, 136, 42), fill=(250, 220, 120))  # sun
    draw.polygon(
        [(0, 80), (40, 52), (85, 78), (125, 48), (160, 70), (160, 120), (0, 120)],
        fill=(70, 110, 60),
    )
    draw.polygon([(0, 100), (60, 88), (160, 104), (160, 120), (0, 120)], fill=(140, 120, 70))
    draw.rectangle((22, 82, 40, 100), fill=(180, 60, 50))  # a red house
    draw.polygon([(19, 83), (31, 70), (43, 83)], fill=(90, 40, 30))
    return image


__all__ = ["create_app"]
