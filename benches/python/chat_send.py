"""chat-send in Python: the function a team would otherwise write (boto3, awslambdaric), with
the guarantees of moebi's Rust chat-send (src/handler/chat_send.rs, src/store/mod.rs).

A message lands in its recipient's inbox, once per event id: one TransactWriteItems per record
(the inbox entry + the idempotency record with the event's digest); a duplicate is a success; a
malformed record, an unknown sender, a bot or another region's recipient, or a reused id fail
that record alone (`batchItemFailures`).

Run: AWS_LAMBDA_RUNTIME_API=host:port MOEBI_TABLE=moebi MOEBI_REGION=us-east-1 \
     python -m awslambdaric chat_send.handler      (in this directory)
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import contract
from sqs_batch import handle_payload
from store import TABLE, apply_once, s, stamp, timestamp

FUNCTION = "chat-send"


class CorruptInbox(Exception):
    error_type = "Permanent.CorruptState"


def handler(event: dict[str, Any], context: Any) -> dict[str, Any] | None:
    return handle_payload(event, "chat.send", deliver)


def sent_at(detail: dict[str, Any]) -> datetime:
    value = contract.string(detail, "sent_at")
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise contract.InvalidEvent("detail.sent_at", f"must be an RFC 3339 time: {e}") from e
    if t.tzinfo is None:
        raise contract.InvalidEvent("detail.sent_at", "must carry a time zone")
    return t


def validate(detail: dict[str, Any]) -> dict[str, Any]:
    """The `chat.send` event, every field checked (the digest is taken over these, sans sent_at)."""
    contract.only_fields(detail, {"id", "from", "to", "text", "sent_at"}, {"in_reply_to"})
    event = {
        "id": contract.event_id(detail),
        "from": contract.name(detail, "from"),
        "to": contract.name(detail, "to"),
        "text": contract.text(detail),
    }
    if detail.get("in_reply_to") is not None:
        event["in_reply_to"] = contract.event_id(detail, "in_reply_to")
    contract.check_id(event)
    return event


def deliver(detail: dict[str, Any]) -> str:
    event = validate(detail)
    when = sent_at(detail)
    if not any(p["name"] == event["from"] for p in contract.TOPOLOGY["participants"] + contract.TOPOLOGY["bots"]):
        raise contract.InvalidEvent("detail.from", f"unknown participant {event['from']!r}")
    if any(b["name"] == event["to"] for b in contract.TOPOLOGY["bots"]):
        raise contract.InvalidEvent("detail.to", f"{event['to']} is a bot: moebi-reply answers it")
    home = contract.home_of("participants", event["to"], "detail.to")
    contract.must_live_here("detail.to", event["to"], home)
    return apply_once(
        FUNCTION,
        event["id"],
        contract.digest(event),
        inbox_put(event, when),
        lambda: CorruptInbox(f"the inbox of {event['to']}: an unconditional entry was refused"),
    )


def inbox_put(event: dict[str, Any], when: datetime) -> dict[str, Any]:
    """The inbox entry: moebi's item, to the letter (src/store/mod.rs `deliver`)."""
    at = timestamp(when.astimezone(timezone.utc))
    item = {
        "pk": s(f"inbox#{event['to']}"),
        "sk": s(f"{at}#{event['id']}"),
        "id": s(event["id"]),
        "from": s(event["from"]),
        "text": s(event["text"]),
        "sent_at": s(at),
        **stamp(),
    }
    if "in_reply_to" in event:
        item["in_reply_to"] = s(event["in_reply_to"])
    return {"Put": {"TableName": TABLE, "Item": item}}
