"""The AWS API emulators the functions run against, and raw DynamoDB calls on them.

- moto (SQS, EventBridge, and a slow DynamoDB kept for reference): `moto_server` on a free
  loopback port, with `moebi setup` run on it (table, bus, queues and rules in every region).
- dynoxide: `moebi serve-dynamodb`, an embedded DynamoDB on a free loopback port.

moebi-reply publishes with EventBridge PutEvents, so moto serves EventBridge in both runs.
"""

from __future__ import annotations

import http.client
import json
import signal
import statistics
import subprocess
import tempfile
import time
import urllib.parse
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import procs
from procs import BenchError

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
TABLE = "moebi"


@dataclass
class Backend:
    """Where a run's DynamoDB and EventBridge calls go."""

    name: str  # "dynoxide" or "moto"
    dynamodb_url: str
    eventbridge_url: str


@dataclass
class Server:
    """An emulator process and its URL."""

    url: str
    proc: subprocess.Popen
    stop_signal: signal.Signals = signal.SIGTERM

    def stop(self) -> None:
        procs.stop(self.proc, self.stop_signal)


def start_moto(moto_server: Path, moebi: Path, work: Path) -> Server:
    """Starts moto and creates every resource of the topology on it; answers its URL."""
    port = procs.free_port()
    env = {**procs.base_env(), **CREDENTIALS}
    proc = procs.start([str(moto_server), "-H", "127.0.0.1", "-p", str(port)], env, work / "moto.log")
    procs.wait_for_port(port, proc, 60)
    url = f"http://127.0.0.1:{port}"
    setup = [str(moebi), "--engine", "aws", "--endpoint-url", url, "setup"]
    done = subprocess.run(setup, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise BenchError(f"moebi setup on moto failed:\n{done.stdout}{done.stderr}")
    return Server(url, proc)


def start_dynoxide(moebi: Path, work: Path, region: str) -> Server:
    """Starts `moebi serve-dynamodb` on a fresh state directory; answers its URL."""
    state = Path(tempfile.mkdtemp(prefix="dynoxide-", dir=work))
    cmd = [str(moebi), "--state", str(state), "serve-dynamodb", "--region", region, "--table", TABLE]
    proc = procs.start(cmd, procs.base_env(), work / "dynoxide.log", stdout_pipe=True)
    url = procs.first_line(proc, 60)
    if not url.startswith("http://"):
        raise BenchError(f"serve-dynamodb printed {url!r}, not a URL")
    return Server(url, proc, signal.SIGINT)  # it serves until Ctrl-C


@contextmanager
def serving(name: str, moebi: Path, moto_server: Path, work: Path, events_url: str) -> Iterator[Backend]:
    """A fresh backend: its DynamoDB empty, so one implementation's writes never slow another's
    (moto copies whole tables per transaction). EventBridge is `events_url` (a moto) for
    dynoxide, the new moto itself for moto."""
    if name == "dynoxide":
        server = start_dynoxide(moebi, work, "us-east-1")
        backend = Backend(name, server.url, events_url)
    elif name == "moto":
        server = start_moto(moto_server, moebi, work)
        backend = Backend(name, server.url, server.url)
    else:
        raise BenchError(f"unknown backend {name!r}: dynoxide or moto")
    try:
        yield backend
    finally:
        server.stop()


class DynamoDB:
    """Raw DynamoDB JSON calls over one kept-alive connection (no SDK: the I/O floor)."""

    def __init__(self, url: str, region: str = "us-east-1") -> None:
        self.conn = http.client.HTTPConnection(urllib.parse.urlsplit(url).netloc, timeout=60)
        # The emulators check that a signature is there, not that it is right (dynoxide wants
        # Authorization and X-Amz-Date; moto reads the region and key from the credential).
        self.auth = (f"AWS4-HMAC-SHA256 Credential=testing/20261123/{region}/dynamodb/aws4_request, "
                     "SignedHeaders=host;x-amz-date;x-amz-target, Signature=" + "0" * 64)

    def call(self, operation: str, body: dict) -> tuple[int, dict]:
        headers = {
            "X-Amz-Target": f"DynamoDB_20120810.{operation}",
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
            "Authorization": self.auth,
        }
        self.conn.request("POST", "/", json.dumps(body), headers)
        resp = self.conn.getresponse()
        data = resp.read()
        try:
            return resp.status, json.loads(data or b"{}")
        except ValueError:  # an emulator's own failure page
            return resp.status, {"unparsed": data[:300].decode(errors="replace")}

    def close(self) -> None:
        self.conn.close()


def share_transaction(products: list[str]) -> dict:
    """A TransactWriteItems shaped like stock-add's, for each product a record: the share's
    conditional `SET ... ADD` and the idempotency record's conditional Put (fresh ids)."""
    stamp = {"S": "2026-11-23T00:00:00.000000Z#us-east-1"}
    items = []
    for product in products:
        items += [
            {"Update": {"TableName": TABLE, "Key": {"pk": {"S": "floor"}, "sk": {"S": f"{product}#us-east-1"}},
                        "UpdateExpression": "SET #product = :product, #region = :region, #rep_at = :rep_at, "
                                            "#rep_in = :rep_in ADD #qty :qty",
                        "ConditionExpression": "attribute_not_exists(#qty) OR #qty <= :limit",
                        "ExpressionAttributeNames": {"#product": "product", "#region": "region", "#qty": "qty",
                                                     "#rep_at": "rep_at", "#rep_in": "rep_in"},
                        "ExpressionAttributeValues": {":product": {"S": product}, ":region": {"S": "us-east-1"},
                                                      ":qty": {"N": "1"}, ":limit": {"N": str(2**63 - 2)},
                                                      ":rep_at": stamp, ":rep_in": {"S": "us-east-1"}}}},
            {"Put": {"TableName": TABLE,
                     "Item": {"pk": {"S": f"floor#{uuid.uuid4()}"}, "sk": {"S": "applied"},
                              "applied_at": {"S": "2026-11-23T00:00:00.000000Z"}, "expires_at": {"N": "1795000000"},
                              "digest": {"S": "0" * 64}, "rep_at": stamp, "rep_in": {"S": "us-east-1"}},
                     "ConditionExpression": "attribute_not_exists(pk)",
                     "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
        ]
    return {"TransactItems": items}


def transact_round_trip_ns(url: str, samples: int, records: int = 1, warmup: int = 10) -> list[int]:
    """Round trips of one TransactWriteItems carrying `records` records (the same shares each
    time, as a warm function adds to the same products; fresh idempotency records), one after
    another."""
    db = DynamoDB(url)
    products = [f"floor-{records}-{i}" for i in range(records)]
    times = []
    try:
        for i in range(warmup + samples):
            body = share_transaction(products)
            t = time.perf_counter_ns()
            status, answer = db.call("TransactWriteItems", body)
            elapsed = time.perf_counter_ns() - t
            if status != 200:
                raise BenchError(f"TransactWriteItems on {url} answered {status}: {answer}")
            if i >= warmup:
                times.append(elapsed)
    finally:
        db.close()
    return times


def put_events_round_trip_ns(url: str, region: str, entry_of: Callable[[], dict], samples: int,
                             warmup: int = 5) -> list[int]:
    """Round trips of one PutEvents carrying one entry (`entry_of()`, fresh each time) on
    `region`'s bus, one after another: what a function's publish costs the emulator before it
    answers (moto routes the event through the region's rules, to a queue or another region's
    bus, within the call)."""
    conn = http.client.HTTPConnection(urllib.parse.urlsplit(url).netloc, timeout=60)
    auth = (f"AWS4-HMAC-SHA256 Credential=testing/20261123/{region}/events/aws4_request, "
            "SignedHeaders=host;x-amz-date;x-amz-target, Signature=" + "0" * 64)
    times = []
    try:
        for i in range(warmup + samples):
            headers = {"X-Amz-Target": "AWSEvents.PutEvents", "Content-Type": "application/x-amz-json-1.1",
                       "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()), "Authorization": auth}
            body = json.dumps({"Entries": [entry_of()]})
            t = time.perf_counter_ns()
            conn.request("POST", "/", body, headers)
            resp = conn.getresponse()
            answer = resp.read()
            elapsed = time.perf_counter_ns() - t
            if resp.status != 200 or json.loads(answer or b"{}").get("FailedEntryCount", 1) != 0:
                raise BenchError(f"PutEvents on {url} ({region}) answered {resp.status}: {answer[:300]!r}")
            if i >= warmup:
                times.append(elapsed)
    finally:
        conn.close()
    return times


def stock_totals(url: str, products: list[str], region: str) -> dict[str, int]:
    """This region's share of each product, read back strongly consistent."""
    db = DynamoDB(url, region)
    totals = {}
    try:
        for product in products:
            key = {"pk": {"S": "stock"}, "sk": {"S": f"{product}#{region}"}}
            status, answer = db.call("GetItem", {"TableName": TABLE, "Key": key, "ConsistentRead": True})
            if status != 200:
                raise BenchError(f"GetItem on {url} answered {status}: {answer}")
            totals[product] = int(answer.get("Item", {}).get("qty", {}).get("N", "0"))
    finally:
        db.close()
    return totals


def median_ms(times_ns: list[int]) -> float:
    return statistics.median(times_ns) / 1e6
