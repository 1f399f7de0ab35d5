"""stock-add in Python: the function a team would otherwise write (boto3, awslambdaric), with
the guarantees of moebi's Rust stock-add (src/handler/stock_add.rs, src/store/mod.rs).

This region's share of a product grows by `qty`, once per event id: one TransactWriteItems per
record (the share's `ADD` + the idempotency record with the event's digest); a duplicate is a
success; a malformed record, a store of another region, an overflow or a reused id fail that
record alone (`batchItemFailures`).

Run: AWS_LAMBDA_RUNTIME_API=host:port MOEBI_TABLE=moebi MOEBI_REGION=us-east-1 \
     python -m awslambdaric stock_add.handler      (in this directory)
"""

from __future__ import annotations

from typing import Any

import contract
from sqs_batch import handle_payload
from store import TABLE, apply_once, n, s, stamp

FUNCTION = "stock-add"
MAX_SHARE = 2**63 - 1  # as moebi: what a signed 64-bit number holds


class Overflow(Exception):
    error_type = "Permanent.Overflow"


def handler(event: dict[str, Any], context: Any) -> dict[str, Any] | None:
    return handle_payload(event, "stock.add", add)


def validate(detail: dict[str, Any]) -> dict[str, Any]:
    """The `stock.add` event, every field checked (the digest is taken over exactly these)."""
    contract.only_fields(detail, {"id", "store", "product", "qty"})
    event = {
        "id": contract.event_id(detail),
        "store": contract.name(detail, "store"),
        "product": contract.product(detail),
        "qty": contract.quantity(detail),
    }
    contract.check_id(event)
    return event


def add(detail: dict[str, Any]) -> str:
    event = validate(detail)
    home = contract.home_of("stores", event["store"], "detail.store")
    contract.must_live_here("detail.store", event["store"], home)
    product, qty = event["product"], event["qty"]
    return apply_once(
        FUNCTION,
        event["id"],
        contract.digest(event),
        share_update(product, qty),
        lambda: Overflow(f"the stock of {product} would exceed {MAX_SHARE}"),
    )


def share_update(product: str, qty: int) -> dict[str, Any]:
    """ADD to this region's share of `product`: moebi's item and expression, to the letter."""
    rep = stamp()
    return {
        "Update": {
            "TableName": TABLE,
            "Key": {"pk": s("stock"), "sk": s(f"{product}#{contract.REGION}")},
            "UpdateExpression": "SET #product = :product, #region = :region, "
            "#rep_at = :rep_at, #rep_in = :rep_in ADD #qty :qty",
            # The share must still fit once `qty` is added.
            "ConditionExpression": "attribute_not_exists(#qty) OR #qty <= :limit",
            "ExpressionAttributeNames": {
                "#product": "product",
                "#region": "region",
                "#qty": "qty",
                "#rep_at": "rep_at",
                "#rep_in": "rep_in",
            },
            "ExpressionAttributeValues": {
                ":product": s(product),
                ":region": s(contract.REGION),
                ":qty": n(qty),
                ":limit": n(MAX_SHARE - qty),
                ":rep_at": rep["rep_at"],
                ":rep_in": rep["rep_in"],
            },
        }
    }
