"""moebi's DynamoDB writes in boto3: the same items and the same exactly-once rule as
src/store/mod.rs, so the Python peer's results are comparable with the Rust functions'.

Each effect and its idempotency record go in ONE TransactWriteItems, the record with
`attribute_not_exists(pk)`. A transaction cancelled on the record means the event was applied
before: a duplicate if the record's digest is this event's, else the id was reused for other
content (a permanent error). The client is built once, at import (cold start).
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any, Callable

import boto3
from botocore.exceptions import ClientError

from contract import REGION

TABLE = os.environ["MOEBI_TABLE"]
DYNAMODB = boto3.client("dynamodb", region_name=REGION)

APPLIED_TTL_SECONDS = 7 * 24 * 3600
FAILURE_TTL_SECONDS = 14 * 24 * 3600
RECORD_INDEX = 1  # the idempotency record's place in the transaction (the effect is at 0)
CONDITION_FAILED = "ConditionalCheckFailed"

APPLIED = "applied"
DUPLICATE = "duplicate"


class IdReused(Exception):
    """The event's id was applied before, for other content."""

    error_type = "Permanent.IdReused"


def s(value: str) -> dict[str, str]:
    return {"S": value}


def n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def timestamp(t: datetime) -> str:
    """RFC 3339, UTC, microseconds, `Z`: moebi's fixed-width timestamps."""
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def stamp() -> dict[str, dict[str, str]]:
    """The replication stamp every item a handler writes carries (src/store/item.rs)."""
    return {"rep_at": s(f"{timestamp(datetime.now(timezone.utc))}#{REGION}"), "rep_in": s(REGION)}


def applied_record(function: str, event_id: str, digest: str) -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    item = {
        "pk": s(f"applied#{function}#{event_id}"),
        "sk": s("applied"),
        "applied_at": s(timestamp(now)),
        "expires_at": n(int(now.timestamp()) + APPLIED_TTL_SECONDS),
        "digest": s(digest),
        **stamp(),
    }
    return {
        "Put": {
            "TableName": TABLE,
            "Item": item,
            "ConditionExpression": "attribute_not_exists(pk)",
            # A cancelled transaction then says what the record holds, in the same round trip.
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def apply_once(
    function: str,
    event_id: str,
    digest: str,
    effect: dict[str, Any],
    on_effect_condition: Callable[[], Exception],
) -> str:
    """Writes `effect` and the idempotency record in one transaction: APPLIED or DUPLICATE."""
    try:
        DYNAMODB.transact_write_items(
            TransactItems=[effect, applied_record(function, event_id, digest)]
        )
        return APPLIED
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") != "TransactionCanceledException":
            raise
        reasons = e.response.get("CancellationReasons") or []
        code = [r.get("Code") for r in reasons] + [None, None]
        if code[RECORD_INDEX] == CONDITION_FAILED:
            kept = reasons[RECORD_INDEX].get("Item", {}).get("digest", {}).get("S")
            if kept is None:
                kept = kept_digest(function, event_id)
            if kept is not None and kept != digest:
                raise IdReused(
                    f"event id {event_id} was applied by {function} before, for other content"
                ) from e
            return DUPLICATE
        if code[0] == CONDITION_FAILED:
            raise on_effect_condition() from e
        raise


def kept_digest(function: str, event_id: str) -> str | None:
    """The digest of an idempotency record, for a store that does not return it on cancel."""
    out = DYNAMODB.get_item(
        TableName=TABLE,
        Key={"pk": s(f"applied#{function}#{event_id}"), "sk": s("applied")},
        ConsistentRead=True,
    )
    return out.get("Item", {}).get("digest", {}).get("S")


def record_failure(queue: str, message_id: str, receive_count: int, reason: str) -> None:
    """Keeps why a queued message failed, for whoever reads its dead letter (best effort)."""
    now = datetime.now(timezone.utc)
    DYNAMODB.put_item(
        TableName=TABLE,
        Item={
            "pk": s(f"failure#{message_id}"),
            "sk": s("failure"),
            "queue": s(queue),
            "reason": s(reason),
            "receive_count": n(receive_count),
            "failed_at": s(timestamp(now)),
            "expires_at": n(int(now.timestamp()) + FAILURE_TTL_SECONDS),
        },
    )
