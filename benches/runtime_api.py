"""A minimal Lambda Runtime API for one function process (stdlib only).

Serves queued invocation payloads on `GET /2018-06-01/runtime/invocation/next` with the headers
Lambda sends, takes `POST .../invocation/<id>/response`, `.../invocation/<id>/error` and
`.../runtime/init/error`, and records for each invocation when it was handed out and when its
answer arrived (`time.perf_counter_ns`), with the answer's body.

    api = RuntimeApi("moebi-stock-add", "us-east-1").start()   # api.address: "127.0.0.1:PORT"
    inv = api.submit(b'{"Records": [...]}')                    # queued before or after exec
    api.wait(inv, timeout_s=30, alive=lambda: proc.poll() is None)
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional

PREFIX = "/2018-06-01/runtime"
ACCOUNT = "000000000000"


class InvocationFailed(RuntimeError):
    """The function answered with an error, failed to start, died, or did not answer in time."""


@dataclass
class Invocation:
    """One invocation: its payload, and what became of it."""

    request_id: str
    payload: bytes
    handed_ns: Optional[int] = None
    answered_ns: Optional[int] = None
    body: bytes = b""
    error_type: Optional[str] = None  # set when the function POSTed to /error
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def duration_ns(self) -> int:
        """From handed out to answered: what Lambda bills (before rounding)."""
        assert self.handed_ns is not None and self.answered_ns is not None
        return self.answered_ns - self.handed_ns

    def json(self) -> object:
        return json.loads(self.body) if self.body else None


class RuntimeApi:
    """The Runtime API of one function instance, on a free loopback port."""

    def __init__(self, function_name: str, region: str, timeout_s: int = 30) -> None:
        self.function_arn = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{function_name}"
        self.timeout_s = timeout_s
        self.pending: "queue.Queue[Invocation]" = queue.Queue()
        self.by_id: dict[str, Invocation] = {}
        self.init_error: Optional[bytes] = None
        self.init_failed = threading.Event()
        self.closing = threading.Event()
        self.server = QuietServer(("127.0.0.1", 0), _handler_for(self))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        """`host:port`, as `AWS_LAMBDA_RUNTIME_API` carries it."""
        port = self.server.server_address[1]
        return f"127.0.0.1:{port}"

    def start(self) -> "RuntimeApi":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()

    def submit(self, payload: bytes) -> Invocation:
        """Queues one invocation; the function gets it on its next `GET .../next`."""
        inv = Invocation(str(uuid.uuid4()), payload)
        self.by_id[inv.request_id] = inv
        self.pending.put(inv)
        return inv

    def wait(self, inv: Invocation, timeout_s: float, alive: Callable[[], bool]) -> Invocation:
        """Waits for `inv`'s answer; raises if the function errs, dies or takes too long."""
        deadline = time.monotonic() + timeout_s
        while not inv.done.wait(0.05):
            if self.init_failed.is_set():
                raise InvocationFailed(f"init error: {self.init_error!r}")
            if not alive():
                raise InvocationFailed("the function process exited before answering")
            if time.monotonic() > deadline:
                raise InvocationFailed(f"no answer within {timeout_s:.0f} s")
        if inv.error_type is not None:
            raise InvocationFailed(f"{inv.error_type}: {inv.body.decode(errors='replace')}")
        return inv

    def invoke(self, payload: bytes, timeout_s: float, alive: Callable[[], bool]) -> Invocation:
        return self.wait(self.submit(payload), timeout_s, alive)

    def next_invocation(self) -> Optional[Invocation]:
        """Blocks until an invocation is queued (None when the server closes)."""
        while not self.closing.is_set():
            try:
                return self.pending.get(timeout=0.2)
            except queue.Empty:
                continue
        return None

    def headers_of(self, inv: Invocation) -> dict[str, str]:
        deadline_ms = int(time.time() * 1000) + self.timeout_s * 1000
        trace = f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0"
        return {
            "Lambda-Runtime-Aws-Request-Id": inv.request_id,
            "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": self.function_arn,
            "Lambda-Runtime-Trace-Id": trace,
            "Content-Type": "application/json",
        }


class QuietServer(ThreadingHTTPServer):
    """A threaded server that does not print a traceback when a client hangs up."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def _handler_for(api: RuntimeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the runtime clients expect
        disable_nagle_algorithm = True  # headers and body go out at once: no delayed-ACK stall

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            if self.path != f"{PREFIX}/invocation/next":
                return self.reply(404, {"errorMessage": f"unknown path {self.path}"})
            inv = api.next_invocation()
            if inv is None:
                return self.reply(503, {"errorMessage": "shutting down"})
            headers = api.headers_of(inv)
            inv.handed_ns = time.perf_counter_ns()
            self.send(200, inv.payload, headers)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            arrived = time.perf_counter_ns()
            parts = self.path[len(PREFIX) + 1 :].split("/") if self.path.startswith(PREFIX) else []
            if parts == ["init", "error"]:
                api.init_error = body
                api.init_failed.set()
                return self.reply(202, {"status": "OK"})
            if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                inv = api.by_id.get(parts[1])
                if inv is None or inv.done.is_set():
                    return self.reply(400, {"errorMessage": f"unknown or answered request {parts[1]}"})
                inv.answered_ns, inv.body = arrived, body
                if parts[2] == "error":
                    inv.error_type = self.headers.get("Lambda-Runtime-Function-Error-Type") or "Unknown"
                inv.done.set()
                return self.reply(202, {"status": "OK"})
            self.reply(404, {"errorMessage": f"unknown path {self.path}"})

        def reply(self, status: int, doc: dict) -> None:
            self.send(status, json.dumps(doc).encode(), {"Content-Type": "application/json"})

        def send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
