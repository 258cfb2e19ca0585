"""What stands between the web app and a careless or hostile client: a bounded request
body (counted as it streams, so a chunked upload with no Content-Length is stopped at the
limit), a bounded number of pixels decoded at once across all requests, and, for a server
without a token, requests from other sites' pages refused."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from urllib.parse import urlsplit

from PIL import Image

from ..errors import ImageTooLarge

DECODE_WAIT_SECONDS = 60.0  # an upload waits this long for room to decode, then is refused
# Bytes a pixel takes when decoded, by PIL mode.
MODE_BYTES = {
    "1": 1,
    "L": 1,
    "P": 1,
    "LA": 2,
    "I;16": 2,
    "I;16B": 2,
    "I;16L": 2,
    "RGB": 3,
    "YCbCr": 3,
    "LAB": 3,
    "HSV": 3,
    "RGBA": 4,
    "RGBa": 4,
    "CMYK": 4,
    "I": 4,
    "F": 4,
}


class PixelBudget:
    """Decoded pixels allowed at once, all requests together: each decode asks for its
    image's weight (from its header: size, mode, bit depth) and waits until there is room,
    so a burst of big uploads is decoded a few at a time instead of all at once."""

    def __init__(self, pixels: int):
        self.capacity = 3 * pixels * 4 + 3 * pixels  # the largest image allowed, 32-bit
        self.used = 0
        self._room = threading.Condition()

    @contextmanager
    def hold(self, data: bytes | str, what: str) -> Iterator[None]:
        weight = min(self.capacity, _decoded_bytes(data))
        give_up = time.monotonic() + DECODE_WAIT_SECONDS
        with self._room:
            while self.used + weight > self.capacity:
                if not self._room.wait(timeout=max(0.0, give_up - time.monotonic())):
                    raise ImageTooLarge(f"{what}: the server is decoding too much; retry later")
            self.used += weight
        try:
            yield
        finally:
            with self._room:
                self.used -= weight
                self._room.notify_all()


def _decoded_bytes(data: bytes | str) -> int:
    """What an encoded image takes once decoded, from its header alone (0 if it has none:
    load_image then refuses it)."""
    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as image:
            width, height = image.size
            # the decoded pixels, a copy on the way to 8 bits, and the RGB picture
            per_pixel = 2 * MODE_BYTES.get(image.mode, 4) + 6
    except Exception:  # noqa: BLE001 (not an image: nothing to decode, load_image says why)
        return 0
    return width * height * per_pixel


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes gets 413, whether it says its
    length or streams in chunks; nothing past the limit is read."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            return await _refuse(send, 413, "request too large")
        seen, started, refused = 0, False, False

        async def counted():
            nonlocal seen, started, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit and not refused:
                    refused = True
                    if not started:  # answer now: the app may turn the abort into a 400
                        started = True
                        await _refuse(send, 413, "request too large")
                    raise _TooLarge
            return message

        async def sending(message):
            nonlocal started
            if refused:
                return  # the 413 has gone; whatever the app makes of the abort does not
            started = started or message["type"] == "http.response.start"
            await send(message)

        with suppress(_TooLarge):  # the 413 has been sent
            await self.app(scope, counted, sending)


class _TooLarge(Exception):
    pass


class SameSite:
    """ASGI middleware for a server without a token: only requests addressed to one of
    `hosts` (Host header, host:port) are served, which defeats DNS rebinding, and a POST
    or DELETE whose Origin is another site is refused (a cross-site form)."""

    def __init__(self, app, hosts: tuple[str, ...]):
        self.app, self.hosts = app, {h.lower() for h in hosts}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1").lower()
        if host not in self.hosts:
            return await _refuse(send, 421, f"this server does not answer for {host!r}")
        origin = headers.get(b"origin", b"").decode("latin-1")
        changes = scope["method"] in ("POST", "DELETE", "PUT", "PATCH")
        if changes and origin and urlsplit(origin).netloc.lower() not in self.hosts:
            return await _refuse(send, 403, "requests from other sites are refused")
        return await self.app(scope, receive, send)


async def _refuse(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
