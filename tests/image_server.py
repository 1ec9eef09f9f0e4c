"""A local HTTP server for the remote image proxy's tests (loopback only, never the internet)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40


@dataclass
class ImageServer:
    port: int
    requests: list[dict[str, str]] = field(default_factory=list)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


# path -> (status, headers, body)
ROUTES: dict[str, tuple[int, dict[str, str], bytes]] = {
    "/logo.png": (200, {"Content-Type": "image/png", "Set-Cookie": "track=1"}, PNG),
    "/page.html": (200, {"Content-Type": "text/html"}, b"<script>alert(1)</script>"),
    "/fake.png": (200, {"Content-Type": "image/png"}, b"<svg onload=alert(1)>"),
    "/image.svg": (200, {"Content-Type": "image/svg+xml"}, b"<svg onload=alert(1)/>"),
    "/big.png": (200, {"Content-Type": "image/png"}, PNG + b"\x00" * (6 * 1024 * 1024)),
}


@contextmanager
def image_server(redirects: dict[str, str] | None = None) -> Iterator[ImageServer]:
    """Serve ROUTES on 127.0.0.1; ``redirects`` maps a path to the Location of a 302."""
    state = ImageServer(port=0)
    moves = dict(redirects or {})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append({"path": self.path, **dict(self.headers.items())})
            if self.path in moves:
                self.send_response(302)
                self.send_header("Location", moves[self.path])
                self.end_headers()
                return
            status, headers, body = ROUTES.get(self.path, (404, {}, b""))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
