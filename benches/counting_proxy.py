"""A counting reverse proxy for AWS JSON-protocol APIs (stdlib only, threaded, keep-alive).

Each request is forwarded to the upstream its `X-Amz-Target` prefix routes to (DynamoDB to the
DynamoDB emulator, EventBridge and the rest to moto), and counted by operation
(`DynamoDB_20120810.TransactWriteItems`, `AWSEvents.PutEvents`, ...), with the number of items
it carries where the operation takes several (TransactItems, Entries).

With `latency_ms`, it waits that long before forwarding each request: a fixed round trip per
call (5 ms is about an in-region DynamoDB call), whatever its size. Each client connection is
served in a thread of its own and each request waits in its connection's thread, so concurrent
calls wait together: a batch whose records call at once pays the latency once, not per record.

    proxy = CountingProxy({"DynamoDB_": dynamo_url}, default=moto_url, latency_ms=5).start()
    ... point AWS_ENDPOINT_URL_* at proxy.url ...
    proxy.counts()   # {"DynamoDB_20120810.TransactWriteItems": {"calls": 10, "items": 20}}
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}
# The request field whose length is the number of items an operation carries.
ITEM_FIELDS = {"TransactWriteItems": "TransactItems", "TransactGetItems": "TransactItems",
               "BatchWriteItem": "RequestItems", "PutEvents": "Entries",
               "SendMessageBatch": "Entries", "DeleteMessageBatch": "Entries"}


class CountingProxy:
    def __init__(self, routes: dict[str, str], default: str, latency_ms: float = 0) -> None:
        self.routes = routes
        self.default = default
        self.latency_s = latency_ms / 1000
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.items: Counter[str] = Counter()
        self.server = _Server(("127.0.0.1", 0), _handler_for(self))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        port = self.server.server_address[1]
        return f"http://127.0.0.1:{port}"

    def start(self) -> "CountingProxy":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.items.clear()

    def counts(self) -> dict[str, dict[str, int]]:
        with self.lock:
            return {op: {"calls": n, "items": self.items[op]} for op, n in sorted(self.calls.items())}

    def upstream_for(self, target: str) -> str:
        for prefix, url in self.routes.items():
            if target.startswith(prefix):
                return url
        return self.default

    def count(self, target: str, body: bytes) -> None:
        operation = target.rsplit(".", 1)[-1]
        items = 1
        if operation in ITEM_FIELDS:
            try:
                items = len(json.loads(body).get(ITEM_FIELDS[operation]) or ())
            except (ValueError, AttributeError):
                items = 0
        with self.lock:
            self.calls[target or "(no X-Amz-Target)"] += 1
            self.items[target or "(no X-Amz-Target)"] += items


class _Server(ThreadingHTTPServer):
    """A thread per connection. The listen backlog holds a batch's connections opened at once
    (the default of 5 would drop the rest's SYNs: a second's retransmit each)."""

    daemon_threads = True
    request_queue_size = 64

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def _handler_for(proxy: CountingProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out at once: no delayed-ACK stall

        def log_message(self, format: str, *args: object) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            self.upstreams: dict[str, http.client.HTTPConnection] = {}  # one per client connection

        def finish(self) -> None:
            for conn in self.upstreams.values():
                conn.close()
            super().finish()

        def do_POST(self) -> None:
            self.forward("POST")

        def do_GET(self) -> None:
            self.forward("GET")

        def forward(self, method: str) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            target = self.headers.get("X-Amz-Target", "")
            proxy.count(target, body)
            if proxy.latency_s:
                time.sleep(proxy.latency_s)  # this connection's thread only: the others go on
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            status, reason, reply_headers, reply = self.upstream_call(target, method, body, headers)
            self.send_response(status, reason)
            for name, value in reply_headers:
                if name.lower() not in HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def upstream_call(self, target: str, method: str, body: bytes, headers: dict[str, str]):
            url = urllib.parse.urlsplit(proxy.upstream_for(target))
            for attempt in (1, 2):  # a kept-alive upstream connection may have been closed
                conn = self.upstreams.get(url.netloc)
                if conn is None:
                    conn = self.upstreams[url.netloc] = http.client.HTTPConnection(url.netloc, timeout=60)
                try:
                    conn.request(method, self.path, body, headers)
                    resp = conn.getresponse()
                    return resp.status, resp.reason, resp.getheaders(), resp.read()
                except (http.client.HTTPException, ConnectionError):
                    conn.close()
                    del self.upstreams[url.netloc]
                    if attempt == 2:
                        raise
            raise AssertionError("unreachable")

    return Handler
