"""The liveness endpoint of a standby replica (leader election): kopf serves it only once it runs, and
a standby that answered nothing would be restarted by its liveness probe over and over."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class _Alive(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802  (http.server's name)
        body = b'{"standby": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002  (probes every few seconds: no log)
        pass


@contextmanager
def standby_liveness(endpoint: str) -> Iterator[None]:
    """Answer 200 on the liveness endpoint's host and port ('' : none) until the block ends; the port is
    free again afterwards, for kopf's own endpoint."""
    if not endpoint:
        yield
        return
    parts = urlsplit(endpoint)
    server = ThreadingHTTPServer((parts.hostname or "0.0.0.0", parts.port or 80), _Alive)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="standby-liveness", daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
