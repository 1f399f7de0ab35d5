"""Measuring one implementation of one function on one backend, under the Runtime API emulator.

- cold start: exec -> first answer, the invocation queued before the exec (fresh process each);
- warm: batches (the front door: requests) one after another on one process (as one Lambda instance takes them), after a
  warm-up: per-invocation duration (handed out -> answered), p50/p99, records/s over the phase;
- peak RSS: VmHWM of the process just before it is stopped;
- calls per record: a short pass through the counting proxy;
- warm at a latency: the warm batches again, every AWS call through the counting proxy waiting
  a fixed time before forwarding it (what the round trips cost where each takes that long).
Every answer is checked: a valid batch must come back with no batchItemFailures, a request to
the front door with 202 and its id.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import procs
from backends import Backend
from counting_proxy import CountingProxy
from functions import WIRING, FrontDoor, Implementation, lambda_env
from procs import BenchError
from runtime_api import Invocation, InvocationFailed, RuntimeApi

TIMEOUT_S = 60.0


@dataclass
class Settings:
    cold_repeats: int
    warm_batches: int
    warmup_batches: int
    single_invocations: int
    counted_batches: int
    batch_size: int
    memory_mb: int
    work: Path


class Instance:
    """One function process with its own Runtime API: one Lambda instance."""

    def __init__(self, impl: Implementation, api: RuntimeApi, proc: subprocess.Popen, log: Path,
                 backend: str = "") -> None:
        self.impl, self.api, self.proc, self.log = impl, api, proc, log
        self.backend = backend
        self.first: Invocation | None = None  # the invocation queued before the exec

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, inv: Invocation) -> Invocation:
        try:
            self.api.wait(inv, TIMEOUT_S, self.alive)
        except InvocationFailed as e:
            raise self.failure(str(e)) from e
        check_answer(self, inv)
        return inv

    def invoke(self, payload: bytes) -> Invocation:
        return self.wait(self.api.submit(payload))

    def failure(self, why: str) -> BenchError:
        label = f"{self.impl.function.name} ({self.impl.language})"
        return BenchError(f"{label}: {why}\n--- last lines of {self.log}:\n{procs.log_tail(self.log)}")


def check_answer(instance: Instance, inv: Invocation) -> None:
    """A valid batch answers no failures; a valid single event answers null; a valid request to
    the front door answers 202 with the id it was sent."""
    try:
        answer = inv.json()
    except ValueError:
        raise instance.failure(f"answered no JSON: {inv.body[:200]!r}") from None
    if WIRING[instance.impl.function.name] == "http":
        return check_http_answer(instance, inv, answer)
    is_batch = inv.payload.startswith(b'{"Records"')
    if is_batch and answer != {"batchItemFailures": []}:
        if instance.backend == "moto" and answer.get("batchItemFailures"):
            # moto's DynamoDB answers 500 to transactions that arrive together; the function
            # reports those records as retryable failures, which SQS would deliver again.
            n = len(answer["batchItemFailures"])
            print(f"    note: moto failed {n} record(s) of a batch (retryable; SQS would redeliver)")
            return
        raise instance.failure(f"a valid batch came back with failures: {answer}")
    if not is_batch and answer is not None:
        raise instance.failure(f"a valid event answered {answer}, not null")


def check_http_answer(instance: Instance, inv: Invocation, answer: object) -> None:
    """202, JSON, and the body's `id` the one the request carried (a fresh id: never a retry)."""
    sent = FrontDoor.sent_id(inv.payload)
    try:
        assert isinstance(answer, dict) and answer.get("statusCode") == 202
        assert answer["headers"]["content-type"] == "application/json"
        assert json.loads(answer["body"]) == {"id": sent}
    except (AssertionError, KeyError, TypeError, ValueError):
        raise instance.failure(f"a valid request (id {sent}) was answered {answer}, not 202 with its id") from None


@contextmanager
def instance(impl: Implementation, backend: Backend, s: Settings, first: bytes | None = None,
             dynamodb_url: str | None = None, eventbridge_url: str | None = None) -> Iterator[tuple[Instance, int]]:
    """Starts a process (with `first` queued before the exec); yields it and its exec time (ns)."""
    fn = impl.function
    api = RuntimeApi(f"moebi-{fn.name}", fn.region).start()
    log = s.work / f"{backend.name}-{fn.name}-{impl.language}.log"
    env = lambda_env(impl, api.address, dynamodb_url or backend.dynamodb_url,
                     eventbridge_url or backend.eventbridge_url, s.memory_mb)
    queued = api.submit(first) if first is not None else None
    exec_ns = time.perf_counter_ns()
    proc = procs.start(impl.command, env, log, impl.cwd, die_with_parent=False)
    inst = Instance(impl, api, proc, log, backend.name)
    try:
        if queued is not None:
            inst.first = inst.wait(queued)
        yield inst, exec_ns
    finally:
        procs.stop(proc)
        api.stop()


def cold_starts(impl: Implementation, backend: Backend, s: Settings, records: int) -> list[dict[str, float]]:
    """Each on a fresh process: exec -> first answer, and exec -> first invocation handed out
    (the init phase)."""
    samples = []
    for _ in range(s.cold_repeats):
        fn = impl.function
        payload = fn.single() if records == 1 else fn.batch(records)
        with instance(impl, backend, s, first=payload) as (inst, exec_ns):
            first = inst.first
            assert first is not None and first.handed_ns and first.answered_ns
            samples.append({"first_answer_ms": (first.answered_ns - exec_ns) / 1e6,
                            "init_ms": (first.handed_ns - exec_ns) / 1e6})
    return samples


@dataclass
class Warm:
    durations_ns: list[int]
    single_ns: list[int]
    records: int
    wall_ns: int
    peak_rss_kb: int | None


def warm(impl: Implementation, backend: Backend, s: Settings) -> Warm:
    """Warm batches one after another on one process, then warm single-record invocations."""
    fn = impl.function
    with instance(impl, backend, s, first=fn.batch(s.batch_size)) as (inst, _):
        for _ in range(s.warmup_batches):
            inst.invoke(fn.batch(s.batch_size))
        invocations = [inst.invoke(fn.batch(s.batch_size)) for _ in range(s.warm_batches)]
        singles = [inst.invoke(fn.single()) for _ in range(s.single_invocations)]
        rss = procs.peak_rss_kb(inst.proc.pid)
    first, last = invocations[0].handed_ns, invocations[-1].answered_ns
    assert first is not None and last is not None
    wall = last - first
    return Warm([i.duration_ns for i in invocations], [i.duration_ns for i in singles],
                s.warm_batches * s.batch_size, wall, rss)


def warm_at_latency(impl: Implementation, backend: Backend, s: Settings, latency_ms: float) -> Warm:
    """`warm` with every AWS call (DynamoDB and EventBridge) through a proxy that waits
    `latency_ms` before forwarding it. The proxy serves each connection in its own thread, so
    calls made at once (a Rust batch's records) wait together, and calls made in turn (the
    Python peer's) add up."""
    proxy = CountingProxy({"DynamoDB_": backend.dynamodb_url}, default=backend.eventbridge_url,
                          latency_ms=latency_ms).start()
    try:
        return warm(impl, Backend(backend.name, proxy.url, proxy.url), s)
    finally:
        proxy.stop()


def calls_per_record(impl: Implementation, backend: Backend, s: Settings) -> dict[str, dict[str, float]]:
    """API calls (and items they carry) per record, counted by the proxy after one warm-up batch."""
    fn = impl.function
    proxy = CountingProxy({"DynamoDB_": backend.dynamodb_url}, default=backend.eventbridge_url).start()
    try:
        with instance(impl, backend, s, first=fn.batch(s.batch_size),
                      dynamodb_url=proxy.url, eventbridge_url=proxy.url) as (inst, _):
            proxy.reset()
            for _ in range(s.counted_batches):
                inst.invoke(fn.batch(s.batch_size))
            counts = proxy.counts()
    finally:
        proxy.stop()
    if not counts:
        raise BenchError(f"{fn.name} ({impl.language}) made no call through the counting proxy: "
                         "are AWS_ENDPOINT_URL_DYNAMODB / _EVENTBRIDGE honoured?")
    records = s.counted_batches * s.batch_size
    return {op: {k: v / records for k, v in c.items()} for op, c in counts.items()}


def percentile(values: list[int], p: float) -> float:
    """The p-th percentile (nearest rank) of `values`, in ms."""
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(p / 100 * len(ordered))))
    return ordered[rank - 1] / 1e6


def median_ms(values: list[float]) -> float:
    return statistics.median(values)
