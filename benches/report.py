"""The benchmark's tables on the terminal, and the machine facts its JSON carries."""

from __future__ import annotations

import hashlib
import os
import subprocess
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

# Short names of the operations in the calls-per-record column.
SHORT = {"TransactWriteItems": "TWI", "PutEvents": "PutEv", "GetItem": "Get", "PutItem": "Put",
         "Query": "Query", "UpdateItem": "Upd"}


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "machine": platform.machine(), "python": platform.python_version(),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "loadavg_at_start": list(os.getloadavg())}


def builds(repo: Path, bootstraps: Path, functions: list[str]) -> dict[str, Any]:
    """Which code was measured: the commit (and whether the tree had changes), each bootstrap."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
        return done.stdout.strip()

    out: dict[str, Any] = {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}
    for fn in functions:
        path = bootstraps / fn / "bootstrap"
        data = path.read_bytes()
        out[fn] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()[:16],
                   "mtime": datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")}
    return out


def table(headers: list[str], rows: list[list[str]], left: int = 3) -> str:
    """Aligned columns: the first `left` (names) to the left, the figures to the right."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i >= left else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def ms(value: Optional[float]) -> str:
    return "—" if value is None else (f"{value:.1f}" if value < 100 else f"{value:.0f}")


def calls_text(calls: dict[str, dict[str, float]]) -> str:
    parts = []
    for target, c in calls.items():
        op = target.rsplit(".", 1)[-1]
        parts.append(f"{SHORT.get(op, op)} {c['calls']:.2g}")
    return ", ".join(parts) or "—"


def size_text(size: Optional[int], unit: int, suffix: str) -> str:
    return "—" if size is None else f"{size / unit:.1f} {suffix}"


RESULT_HEADERS = ["function", "impl", "backend", "cold 1 ms", "cold 10 ms", "warm p50 ms", "warm p99 ms",
                  "rec/s", "warm 1 ms", "peak RSS MB", "calls/record", "floor x", "package", "zip arm64"]


def result_rows(results: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for r in results:
        rows.append([
            r["function"], r["implementation"], r["backend"],
            ms(r["cold_1_ms"]), ms(r["cold_10_ms"]), ms(r["warm_p50_ms"]), ms(r["warm_p99_ms"]),
            f"{r['records_per_s']:.0f}", ms(r["warm_single_p50_ms"]),
            "—" if r["peak_rss_kb"] is None else f"{r['peak_rss_kb'] / 1024:.1f}",
            calls_text(r["calls_per_record"]),
            "—" if r["floor_ratio"] is None else f"{r['floor_ratio']:.2f}",
            size_text(r["package_bytes"], 1 << 20, "MB") if r["implementation"] == "rust"
            else size_text(r["package_bytes"], 1 << 10, "KB") + " .py",
            r["zip_text"] if r["zip_text"].endswith("MB") else r["zip_text"].split(":")[0],
        ])
    return rows


LATENCY_HEADERS = ["function", "backend", "latency ms", "rust rec/s", "python rec/s", "rust/python",
                   "rust p50 ms", "python p50 ms"]


def latency_rows(ratios: list[dict[str, Any]]) -> list[list[str]]:
    """Per function with a peer, each latency: both records/s, their ratio, both batch p50s."""
    rows = []
    for r in ratios:
        for latency, x in r.get("by_latency_ms", {}).items():
            rows.append([r["function"], r["backend"], latency, f"{x['rust_records_per_s']:.0f}",
                         f"{x['python_records_per_s']:.0f}", f"{x['rust_over_python']:.2f}x",
                         ms(x["rust_warm_p50_ms"]), ms(x["python_warm_p50_ms"])])
    return rows


def cost_rows(costs: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for c in costs:
        d = c["usd_per_million"]
        rows.append([c["kind"], c["implementation"], *(f"{d[k]:.3f}" for k in
                     ("lambda", "sqs", "dynamodb", "eventbridge", "total"))])
    return rows


COST_HEADERS = ["kind (per million events)", "impl", "Lambda $", "SQS $", "DynamoDB $", "EventBridge $", "total $"]
