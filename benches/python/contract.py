"""The event contract, as a Python team would write it beside moebi's Rust one (src/contract/).

An SQS record's body is an EventBridge envelope (`source` "moebi", `detail-type` the kind,
`detail` the event). Every check names the field and the rule, like moebi's errors, so a bad
record's failure says what is wrong with it. The topology (who lives where) is read once, at
import, from MOEBI_TOPOLOGY (default: infra/topology.json of this repository).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
import uuid
from pathlib import Path
from typing import Any

SOURCE = "moebi"
DERIVED_PREFIX = "moebi:"
_DERIVED_NS = uuid.UUID(int=0x6D6F6562690040008000000000000001)  # src/contract/id.rs
_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
MAX_QTY = 1_000_000
MAX_PRODUCT_CHARS = 64
MAX_TEXT_CHARS = 4096

# Deployed as a Lambda zip (`make load-rehearsal`), the topology travels beside the handler;
# in the repository it is infra/topology.json.
_BESIDE = Path(__file__).resolve().parent / "topology.json"
_DEFAULT_TOPOLOGY = _BESIDE if _BESIDE.exists() else Path(__file__).resolve().parents[2] / "infra" / "topology.json"
TOPOLOGY: dict[str, Any] = json.loads(
    Path(os.environ.get("MOEBI_TOPOLOGY") or _DEFAULT_TOPOLOGY).read_text()
)
REGION: str = os.environ.get("MOEBI_REGION") or os.environ["AWS_REGION"]


class InvalidEvent(ValueError):
    """The event breaks the contract: retrying cannot help."""

    error_type = "Permanent.InvalidEvent"

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"field `{field}`: {rule}")


class WrongRegion(ValueError):
    """The event was routed to a region that is not its target's home: a wiring error."""

    error_type = "Permanent.WrongRegion"


def parse_envelope(body: str, detail_type: str) -> dict[str, Any]:
    """The `detail` of the EventBridge envelope in an SQS record's body."""
    try:
        envelope = json.loads(body)
    except json.JSONDecodeError as e:
        raise InvalidEvent("body", f"not JSON: {e}") from e
    return detail_of(envelope, detail_type)


def detail_of(envelope: Any, detail_type: str) -> dict[str, Any]:
    """The `detail` of an EventBridge envelope of kind `detail_type`, checked to be an object."""
    if not isinstance(envelope, dict):
        raise InvalidEvent("body", "an EventBridge event must be a JSON object")
    for name, want in (("source", SOURCE), ("detail-type", detail_type)):
        if envelope.get(name) != want:
            raise InvalidEvent(name, f"must be {want!r}, got {envelope.get(name)!r}")
    detail = envelope.get("detail")
    if not isinstance(detail, dict):
        raise InvalidEvent("detail", "must be a JSON object")
    return detail


def only_fields(detail: dict[str, Any], required: set[str], optional: set[str] = set()) -> None:
    """Every required field is there, and nothing else."""
    missing = sorted(required - detail.keys())
    if missing:
        raise InvalidEvent(f"detail.{missing[0]}", "is required")
    unknown = sorted(detail.keys() - required - optional)
    if unknown:
        raise InvalidEvent(f"detail.{unknown[0]}", "unknown field")


def string(detail: dict[str, Any], name: str) -> str:
    value = detail.get(name)
    if not isinstance(value, str):
        raise InvalidEvent(f"detail.{name}", f"must be a string, got {json.dumps(value)}")
    return value


def event_id(detail: dict[str, Any], name: str = "id") -> str:
    value = string(detail, name)
    if not _ID.match(value):
        raise InvalidEvent(f"detail.{name}", "must be 1 to 128 characters of A-Z, a-z, 0-9, '-', '_', '.', ':'")
    return value


def check_id(event: dict[str, Any]) -> None:
    """An id in moebi's own namespace is accepted only as a reply's, derived from what it answers."""
    if not event["id"].startswith(DERIVED_PREFIX):
        return
    answered = event.get("in_reply_to")
    if answered is None or event["id"] != f"{DERIVED_PREFIX}reply:{uuid.uuid5(_DERIVED_NS, 'reply:' + answered)}":
        raise InvalidEvent("detail.id", "ids starting with `moebi:` are moebi's own (a reply's, derived from what it answers)")


def name(detail: dict[str, Any], field: str) -> str:
    value = string(detail, field)
    if not _NAME.match(value):
        raise InvalidEvent(f"detail.{field}", "must be 1 to 32 characters of a-z, 0-9 and '-', starting with a letter")
    return value


def product(detail: dict[str, Any]) -> str:
    value = string(detail, "product")
    if not value.strip():
        raise InvalidEvent("detail.product", "must not be empty")
    if len(value) > MAX_PRODUCT_CHARS:
        raise InvalidEvent("detail.product", f"must be at most {MAX_PRODUCT_CHARS} characters")
    if value != value.strip() or any(unicodedata.category(c) == "Cc" for c in value):
        raise InvalidEvent("detail.product", "must have no control characters and no leading or trailing spaces")
    return value


def quantity(detail: dict[str, Any]) -> int:
    value = detail.get("qty")
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_QTY:
        raise InvalidEvent("detail.qty", f"must be a whole number from 1 to {MAX_QTY}, got {json.dumps(value)}")
    return value


def text(detail: dict[str, Any]) -> str:
    value = string(detail, "text")
    if not value.strip():
        raise InvalidEvent("detail.text", "must not be empty")
    if len(value) > MAX_TEXT_CHARS:
        raise InvalidEvent("detail.text", f"must be at most {MAX_TEXT_CHARS} characters, got {len(value)}")
    return value


def home_of(kind: str, who: str, field: str) -> str:
    """The home region of a store or participant (`kind`: "stores", "participants")."""
    for entry in TOPOLOGY[kind]:
        if entry["name"] == who:
            return entry["home"]
    raise InvalidEvent(field, f"unknown {kind[:-1]} {who!r}")


def must_live_here(field: str, who: str, home: str) -> None:
    if home != REGION:
        raise WrongRegion(f"field `{field}`: {who} lives in {home}, not in {REGION}")


def digest(event: dict[str, Any]) -> str:
    """SHA-256 (hex) of the event as moebi's serde_json writes it (keys sorted, compact), without
    `sent_at`: the same digest moebi keeps, so the two implementations recognise each other's
    records (src/ports.rs `digest`)."""
    content = {k: v for k, v in event.items() if k != "sent_at"}
    data = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(data.encode()).hexdigest()
