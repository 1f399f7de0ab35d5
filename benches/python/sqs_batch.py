"""The Lambda entry shared by moebi's Python functions: an SQS batch of EventBridge envelopes,
answered with partial batch failures (a bad record fails alone, the others are applied), or a
single EventBridge event (an error makes Lambda retry it).

Records are handled one after another, as the seed's boto3 handlers loop over
`event["Records"]`: the pattern a Python team would write first.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from contract import InvalidEvent, detail_of, parse_envelope
from store import record_failure

logger = logging.getLogger("moebi")

# What a function does with one event's `detail`: "applied" or "duplicate", or raises.
Apply = Callable[[dict[str, Any]], str]


def handle_payload(event: dict[str, Any], detail_type: str, apply: Apply) -> dict[str, Any] | None:
    """Runs `apply` on each record of an SQS batch (or on one EventBridge event)."""
    if "Records" not in event:
        apply(detail_of(event, detail_type))  # raises: Lambda retries the event
        return None
    failures = []
    for record in event["Records"]:
        message_id = record.get("messageId", "")
        try:
            body = record.get("body")
            if not isinstance(body, str):
                raise InvalidEvent("body", "is required")
            outcome = apply(parse_envelope(body, detail_type))
            logger.debug("handled %s: %s", message_id, outcome)
        except Exception as e:  # every failure is this record's alone
            reason = f"{type(e).__name__}: {e}"
            logger.warning("record %s failed: %s", message_id, reason)
            failures.append({"itemIdentifier": message_id})
            keep_failure(record, message_id, reason)
    return {"batchItemFailures": failures}


def keep_failure(record: dict[str, Any], message_id: str, reason: str) -> None:
    """Best effort: SQS retries the record whether or not the reason could be written."""
    queue = (record.get("eventSourceARN") or "").rsplit(":", 1)[-1]
    count = int((record.get("attributes") or {}).get("ApproximateReceiveCount") or 1)
    try:
        record_failure(queue, message_id, count, reason)
    except Exception as e:
        logger.warning("cannot record why %s failed: %s", message_id, e)
