"""The functions under test: where each runs, the events it gets, how it is started.

Regions and names come from infra/topology.json: stock-add runs in us-east-1 with a store homed
there, chat-send in us-east-1 delivering to a participant homed there, stock-status in us-east-1
answering a participant homed there, moebi-reply in its bot's home region. Every record carries
fresh uuid4 ids (event, envelope, message): nothing is ever a duplicate. The records of a batch
add to distinct products (`bench-0`..`bench-9`), so none waits for another's share.

The front door takes no batches: each invocation is one HTTP API request (payload format 2.0),
events/front-door/send.json with a fresh body `id` (a repeated id would be a retry), run in its
caller's home region.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from backends import CREDENTIALS
from procs import base_env

ACCOUNT = "000000000000"
HOME_REGION = "us-east-1"
FRONT_DOOR_REQUEST = Path(__file__).resolve().parents[1] / "events" / "front-door" / "send.json"
# The front door's routes that publish (src/front/mod.rs): the event's kind, the field the caller fills.
FRONT_DOOR_ROUTES = {"POST /messages": ("chat.send", "from"), "POST /stock": ("stock.add", "store"),
                     "POST /stock/status": ("stock.status", "asker")}

# Round trips on the critical path of one 10-record batch (the front door: one request), by
# (function, implementation), each of a kind: "one", a TransactWriteItems of one record (a Query,
# PutItem or moebi-reply's PutEvents is counted as one); "batch", one carrying the batch's
# records; "put_events", a PutEvents of the front door's event on the bench's EventBridge. The
# I/O floor ratio is warm p50 / their sum, each at the emulator's median.
# Update when a handler changes (the bench warns when a ratio falls below 1):
#   moebi (src/invoke.rs `batch_of`, src/store/coalesce.rs): records run concurrently, and the
#   writes of those in flight together go in one transaction; the bench's batches touch 10
#   distinct products and ids, so one transaction carries all 10.
#   The Python peers loop over the records (the seed's pattern): a transaction each, in turn.
CRITICAL_PATH_ROUND_TRIPS: dict[tuple[str, str], tuple[str, ...]] = {
    ("stock-add", "rust"): ("batch",),          # one TransactWriteItems carrying the 10 records
    ("stock-add", "python"): ("one",) * 10,     # TransactWriteItems per record, in turn
    ("chat-send", "rust"): ("batch",),          # one TransactWriteItems carrying the 10 records
    ("chat-send", "python"): ("one",) * 10,     # TransactWriteItems per record, in turn
    ("moebi-reply", "rust"): ("batch", "one"),  # the records' TransactWriteItems, then PutEvents
    ("stock-status", "rust"): ("one", "batch"), # the records' Queries at once, then their writes
    ("front-door", "rust"): ("one", "put_events"),  # a request: its record's PutItem, then its PutEvents
}

# How AWS delivers each function's events (src/topology/rules.rs: Target::Queue / Function):
# a single-record invocation of an SQS-fed function is a batch of one, of the others one event;
# the front door is invoked by API Gateway, synchronously, once per request.
WIRING = {"chat-send": "sqs", "stock-add": "sqs", "moebi-reply": "eventbridge", "stock-status": "eventbridge",
          "front-door": "http"}
PYTHON_PEERS = {"stock-add": "stock_add", "chat-send": "chat_send"}


@dataclass
class Function:
    """One function: its region, and the events it is fed."""

    name: str
    kind: str  # detail-type
    region: str
    detail_of: Any  # (index) -> the event's detail, with a fresh id
    stock_added: Counter = field(default_factory=Counter)  # product -> qty sent (stock-add)

    def envelope(self, i: int) -> dict[str, Any]:
        detail = self.detail_of(i)
        if self.name == "stock-add":
            self.stock_added[detail["product"]] += detail["qty"]
        return {"version": "0", "id": str(uuid.uuid4()), "detail-type": self.kind, "source": "moebi",
                "account": ACCOUNT, "time": _now(), "region": self.region, "resources": [], "detail": detail}

    def batch(self, records: int) -> bytes:
        """An SQS batch of `records` fresh events, as the event source mapping delivers it."""
        return json.dumps({"Records": [self.sqs_record(self.envelope(i)) for i in range(records)]}).encode()

    def single(self) -> bytes:
        """A one-record invocation in the form AWS delivers it to this function."""
        if WIRING[self.name] == "sqs":
            return self.batch(1)
        return json.dumps(self.envelope(0)).encode()

    def sqs_record(self, envelope: dict[str, Any]) -> dict[str, Any]:
        now_ms = str(int(datetime.now(timezone.utc).timestamp() * 1000))
        return {
            "messageId": str(uuid.uuid4()), "receiptHandle": f"AQEB{uuid.uuid4().hex}",
            "body": json.dumps(envelope, separators=(",", ":")),
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": now_ms,
                           "SenderId": "AIDAIENQZJOLO23YVJ4VO", "ApproximateFirstReceiveTimestamp": now_ms},
            "messageAttributes": {}, "md5OfBody": "0" * 32, "eventSource": "aws:sqs",
            "eventSourceARN": f"arn:aws:sqs:{self.region}:{ACCOUNT}:moebi-{self.name}",
            "awsRegion": self.region,
        }


@dataclass
class FrontDoor:
    """The front door, fed one HTTP API request per invocation: `template` (API Gateway's
    payload) with a fresh body `id` and a fresh API request id each time."""

    name: str
    region: str
    template: dict[str, Any]
    stock_added: Counter = field(default_factory=Counter)  # none: it publishes, stock-add adds

    def single(self) -> bytes:
        request = json.loads(json.dumps(self.template))
        body = json.loads(request["body"])
        body["id"] = str(uuid.uuid4())
        request["body"] = json.dumps(body)
        request["requestContext"]["requestId"] = uuid.uuid4().hex[:16]
        return json.dumps(request).encode()

    def batch(self, records: int) -> bytes:
        """API Gateway invokes it per request: a "batch" is one request (the bench measures it
        with a batch size of 1)."""
        if records != 1:
            raise ValueError(f"{self.name} takes one request per invocation, not {records}")
        return self.single()

    def published(self) -> dict[str, Any]:
        """A PutEvents entry like the one a fresh request makes it publish (the caller from the
        claims, `sent_at` stamped on a message), for the emulator's PutEvents floor."""
        request = self.template
        kind, caller_field = FRONT_DOOR_ROUTES[request["routeKey"]]
        detail = {**json.loads(request["body"]), "id": str(uuid.uuid4()),
                  caller_field: request["requestContext"]["authorizer"]["jwt"]["claims"]["username"]}
        if kind == "chat.send":
            detail["sent_at"] = datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
        return {"Source": "moebi", "DetailType": kind, "Detail": json.dumps(detail), "EventBusName": "moebi"}

    @staticmethod
    def sent_id(payload: bytes) -> str:
        """The body `id` of a request this class made."""
        return json.loads(json.loads(payload)["body"])["id"]


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _homed(entries: list[dict[str, str]], region: str, what: str) -> str:
    for entry in entries:
        if entry["home"] == region:
            return entry["name"]
    raise SystemExit(f"infra/topology.json has no {what} homed in {region}")


def front_door(topology: dict[str, Any], template_path: Path = FRONT_DOOR_REQUEST) -> FrontDoor:
    """The front door in its caller's home region (the user the token's claims name)."""
    template = json.loads(template_path.read_text())
    user = template["requestContext"]["authorizer"]["jwt"]["claims"]["username"]
    homes = {p["name"]: p["home"] for p in topology["participants"] + topology["stores"]}
    if user not in homes:
        raise SystemExit(f"{template_path}: {user!r} is no participant or store of infra/topology.json")
    return FrontDoor("front-door", homes[user], template)


def functions(topology: dict[str, Any]) -> list[Function | FrontDoor]:
    """The five functions, each fed events its region's rules (or its API) would route to it."""
    store = _homed(topology["stores"], HOME_REGION, "store")
    recipient = _homed(topology["participants"], HOME_REGION, "participant")
    sender = next(p["name"] for p in topology["participants"] if p["name"] != recipient)
    bot = topology["bots"][0]

    def chat(to: str):
        return lambda i: {"id": str(uuid.uuid4()), "from": sender, "to": to,
                          "text": f"bench message {i}: how is the weather?", "sent_at": _now()}

    return [
        Function("stock-add", "stock.add", HOME_REGION,
                 lambda i: {"id": str(uuid.uuid4()), "store": store, "product": f"bench-{i}", "qty": 3}),
        Function("chat-send", "chat.send", HOME_REGION, chat(recipient)),
        Function("moebi-reply", "chat.send", bot["home"], chat(bot["name"])),
        Function("stock-status", "stock.status", HOME_REGION,
                 lambda i: {"id": str(uuid.uuid4()), "asker": recipient, "product": "bench-0"}),
        front_door(topology),
    ]


MIXED_PRODUCTS = 5


def mixed(fn: Function, products: int = MIXED_PRODUCTS) -> Function:
    """stock-add as a store adding a few products over and over: record i of a batch adds to
    `mix-{i % products}` (a batch of 10: two adds to each of 5 shares), beside the distinct
    products (`bench-{i}`) of `fn`."""
    store = fn.detail_of(0)["store"]
    return Function(fn.name, fn.kind, fn.region,
                    lambda i: {"id": str(uuid.uuid4()), "store": store, "product": f"mix-{i % products}", "qty": 3})


@dataclass
class Implementation:
    """How to start one implementation of a function."""

    function: Function | FrontDoor
    language: str  # "rust" or "python"
    command: list[str]
    cwd: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)


def implementations(fn: Function | FrontDoor, bootstraps: Path, python: Path, peers: Path) -> list[Implementation]:
    """The Rust bootstrap, and the Python peer if there is one."""
    rust = Implementation(fn, "rust", [str(bootstraps / fn.name / "bootstrap")])
    if fn.name not in PYTHON_PEERS:
        return [rust]
    module = PYTHON_PEERS[fn.name]
    topology = peers.parents[1] / "infra" / "topology.json"
    py = Implementation(fn, "python", [str(python), "-m", "awslambdaric", f"{module}.handler"], peers,
                        {"_HANDLER": f"{module}.handler", "LAMBDA_TASK_ROOT": str(peers),
                         "PYTHONPATH": str(peers), "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
                         "MOEBI_TOPOLOGY": str(topology), "PYTHONDONTWRITEBYTECODE": "1"})
    return [rust, py]


def lambda_env(impl: Implementation, runtime_api: str, dynamodb_url: str, eventbridge_url: str,
               memory_mb: int) -> dict[str, str]:
    """The environment Lambda gives a function, pointed at the emulators."""
    fn = impl.function
    return {
        **base_env(), **CREDENTIALS, **impl.extra_env,
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_LAMBDA_FUNCTION_NAME": f"moebi-{fn.name}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/moebi-{fn.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"bench/[$LATEST]{uuid.uuid4().hex}",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_LEVEL": "WARN",
        "AWS_REGION": fn.region, "AWS_DEFAULT_REGION": fn.region,
        "MOEBI_REGION": fn.region, "MOEBI_TABLE": "moebi", "MOEBI_BUS": "moebi",
        # Per service: DynamoDB may be dynoxide while EventBridge is moto.
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_url,
        "AWS_ENDPOINT_URL_EVENTBRIDGE": eventbridge_url,
    }
