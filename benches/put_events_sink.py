"""An EventBridge stand-in that accepts every PutEvents at once (stdlib only): what the front
door's first answer costs without moto's own PutEvents (15 ms and growing as moto takes more
events), as dynoxide stands in for DynamoDB. Used for that one figure only; every other run
publishes to moto.
"""

from __future__ import annotations

import json
import threading
import uuid
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator


class _Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        entries = [{"EventId": str(uuid.uuid4())} for _ in body.get("Entries", [])]
        out = json.dumps({"FailedEntryCount": 0, "Entries": entries}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/x-amz-json-1.1")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *_: object) -> None:
        pass


@contextmanager
def put_events_sink() -> Iterator[str]:
    """Serves the stand-in on a loopback port; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
