"""What a million events of each kind cost on AWS, end to end, from the measured figures and
prices.json. The whole model is `cost_per_million`; `kind_paths` says which functions, queues
and buses each kind goes through (infra/topology.json, DESIGN.md "Message kinds and flows").
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Measured:
    """One implementation of one function, as the benchmark measured it."""

    batch_p50_ms: float  # warm invocation of a full SQS batch
    single_p50_ms: float  # warm invocation of one record, in the form AWS delivers it
    calls: dict[str, dict[str, float]]  # X-Amz-Target -> {"calls", "items"} per record


@dataclass
class Step:
    function: str
    delivery: str  # "sqs": a rule targets the function's queue; "eventbridge": the function


@dataclass
class KindPath:
    kind: str
    steps: list[Step]
    client_events: int  # PutEvents entries clients publish per event
    cross_region: float  # bus-to-bus forwards per event (mean over the topology's pairs)


def kind_paths(topology: dict[str, Any]) -> list[KindPath]:
    """Each kind's way through the system. Clients publish to their home region's bus; a rule
    there sends the event to a local queue or function, or to the recipient's home bus."""
    homes = {p["name"]: p["home"] for p in topology["participants"]}
    pairs = [(a, b) for a in homes for b in homes if a != b]
    chat_cross = sum(homes[a] != homes[b] for a, b in pairs) / max(1, len(pairs))
    bot_home = topology["bots"][0]["home"]
    bot_cross = sum(h != bot_home for h in homes.values()) / max(1, len(homes))
    return [
        KindPath("chat.send to a participant", [Step("chat-send", "sqs")], 1, chat_cross),
        # The bot's reply goes back to the sender's home (its PutEvents is counted in moebi-reply's calls).
        KindPath("chat.send to moebi (+ reply)", [Step("moebi-reply", "eventbridge"), Step("chat-send", "sqs")],
                 1, 2 * bot_cross),
        # A store publishes on its home bus, which is where its stock-add runs.
        KindPath("stock.add", [Step("stock-add", "sqs")], 1, 0.0),
        # An asker publishes on its home bus, where stock-status answers it.
        KindPath("stock.status", [Step("stock-status", "eventbridge")], 1, 0.0),
    ]


def dynamodb_units(calls: dict[str, dict[str, float]], p: dict[str, Any]) -> tuple[float, float, float]:
    """(WRU, RRU, items written) per record, every item under 1 KB (reads under 4 KB), reads
    strongly consistent (moebi's and the peers' are)."""
    wru = rru = written = 0.0
    for target, c in calls.items():
        op = target.rsplit(".", 1)[-1]
        if op == "TransactWriteItems":
            wru += c["items"] * p["wru_per_item_transactional"]
            written += c["items"]
        elif op in ("PutItem", "UpdateItem", "DeleteItem"):
            wru += c["calls"] * p["wru_per_item_standard"]
            written += c["calls"]
        elif op in ("GetItem", "Query"):
            rru += c["calls"] * p["rru_per_item_strongly_consistent"]
        elif op == "TransactGetItems":
            rru += c["items"] * p["rru_per_item_transactional"]
    return wru, rru, written


def cost_per_million(path: KindPath, measured: dict[str, Measured], prices: dict[str, Any],
                     memory_mb: int, regions: int, batch_size: int) -> dict[str, float]:
    """Dollars per million events of `path`'s kind, by service.

    - Lambda (arm64, `memory_mb`): an SQS-fed function is invoked once per full batch of
      `batch_size` records, an EventBridge-fed one once per event; billed duration = the
      measured warm p50 of that invocation rounded up to 1 ms, shared by its records; plus the
      request price per invocation. (Measured on this machine's CPU, not on Graviton.)
    - SQS: per event, EventBridge's SendMessage; per batch, the mapping's ReceiveMessage and
      DeleteMessageBatch. Each message is under 64 KB: one request each.
    - DynamoDB: the units of the calls counted per record (dynamodb_units), plus 1 rWRU per
      item written in each of the other `regions - 1` replicas of the global table.
    - EventBridge: the clients' events, the functions' own PutEvents entries (counted), and
      every bus-to-bus forward across regions, each a custom event.
    """
    lam, ddb = prices["lambda"], prices["dynamodb_on_demand"]
    sqs, eb = prices["sqs"], prices["eventbridge"]
    out = {"lambda": 0.0, "sqs": 0.0, "dynamodb": 0.0, "eventbridge": 0.0}
    out["eventbridge"] += path.client_events * eb["custom_events_per_million"]
    out["eventbridge"] += path.cross_region * eb["cross_region_bus_delivery_per_million"]
    for step in path.steps:
        m = measured[step.function]
        per_invocation = batch_size if step.delivery == "sqs" else 1
        billed_ms = math.ceil(m.batch_p50_ms if step.delivery == "sqs" else m.single_p50_ms)
        gb_seconds = billed_ms / 1000 * memory_mb / 1024
        out["lambda"] += (gb_seconds * lam["arm64_gb_second"] * 1e6 + lam["requests_per_million"]) / per_invocation
        if step.delivery == "sqs":
            out["sqs"] += (1 + 2 / per_invocation) * sqs["standard_requests_per_million"]
        wru, rru, written = dynamodb_units(m.calls, ddb)
        out["dynamodb"] += wru * ddb["write_request_unit_per_million"] + rru * ddb["read_request_unit_per_million"]
        out["dynamodb"] += written * (regions - 1) * ddb["replicated_write_request_unit_per_million"]
        published = sum(c["items"] for t, c in m.calls.items() if t.endswith(".PutEvents"))
        out["eventbridge"] += published * eb["custom_events_per_million"]
    out["total"] = sum(out.values())
    return out


def memory_mb(variables_tf: Path) -> int:
    """The default of `variable "memory_mb"` in infra/variables.tf."""
    text = variables_tf.read_text()
    found = re.search(r'variable\s+"memory_mb"\s*\{[^}]*?default\s*=\s*(\d+)', text, re.S)
    if not found:
        raise SystemExit(f"no default for memory_mb in {variables_tf}")
    return int(found.group(1))


def costs(measured: dict[str, dict[str, Measured]], topology: dict[str, Any], prices: dict[str, Any],
          memory: int, batch_size: int) -> list[dict[str, Any]]:
    """Every kind x implementation whose every function was measured in that implementation."""
    rows = []
    for path in kind_paths(topology):
        for language in ("rust", "python"):
            if not all(language in measured.get(s.function, {}) for s in path.steps):
                continue
            by_fn = {s.function: measured[s.function][language] for s in path.steps}
            dollars = cost_per_million(path, by_fn, prices, memory, len(topology["regions"]), batch_size)
            rows.append({"kind": path.kind, "implementation": language, "usd_per_million": dollars})
    return rows
