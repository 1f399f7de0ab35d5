"""The benchmark's tables on the terminal, and the machine facts its JSON carries."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
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


def warn_about(doc: dict[str, Any]) -> None:
    """What makes figures doubtful, said after the tables."""
    if doc["rebuilt_during_run"]:
        print(f"\nwarning: {', '.join(doc['rebuilt_during_run'])} rebuilt during the run: "
              "its rows mix two builds; run again", file=sys.stderr)
    for r in doc["results"]:
        if r["floor_ratio"] is not None and r["floor_ratio"] < 1:
            print(f"warning: {r['function']} ({r['implementation']}) on {r['backend']} is faster than "
                  f"{r['critical_path_round_trips']} round trips: update CRITICAL_PATH_ROUND_TRIPS "
                  "in benches/functions.py", file=sys.stderr)
    load = doc["machine"]["loadavg_at_end"][0]
    if load > 0.5 * (doc["machine"]["nproc"] or 1):
        print(f"warning: load average {load:.1f} at the end: other processes shared the CPUs", file=sys.stderr)


def print_report(doc: dict[str, Any]) -> None:
    m, b = doc["machine"], doc["builds"]
    print(f"\nmoebi Lambda bench — {b['commit'][:12]}{' (with changes)' if b['dirty'] else ''} — {m['date']} — {m['nproc']} x {m['cpu_model']}, Linux {m['kernel']}, "
          f"load {m['loadavg_at_start'][0]:.2f} -> {m['loadavg_at_end'][0]:.2f}")
    for backend, s in doc["settings"].items():
        print(f"{backend}: batches of {s['batch_size']} records; warm: {s['warm_batches']} batches after "
              f"{s['warmup_batches']} (+ {s['single_invocations']} single records); cold: median of "
              f"{s['cold_repeats']}; durations from handed out to answered")
    http = doc["settings_per_request"]
    for backend, s in http["by_backend"].items():
        print(f"{', '.join(http['functions'])} on {backend}: one HTTP API request per invocation; warm: "
              f"{s['warm_batches']} requests after {s['warmup_batches']}; cold: median of {s['cold_repeats']}; "
              "its cold 1 is exec -> the first request's answer, warm p50/p99 per request, rec/s requests/s, "
              "calls per request")
    print("bootstraps: " + ", ".join(f"{fn} {v['sha256'][:8]} built {v['mtime'][:16]}" for fn, v in b.items()
                                     if isinstance(v, dict)))
    print()
    print(table(RESULT_HEADERS, result_rows(doc["results"])))
    unzipped = sorted({r["function"] for r in doc["results"] if r["zip_text"].startswith("not built")})
    if unzipped:
        print(f"zip arm64 of {', '.join(unzipped)}: not built: run make build")
    for r in doc["results"]:
        if r["wiring"] == "http":
            floor = doc["io_floor_transact_write_ms"][r["backend"]]
            print(f"{r['function']} on {r['backend']}: exec -> first answer {ms(r['cold_1_ms'])} ms, of which "
                  f"{ms(r['cold_1_init_ms'])} ms until it asks for the request (init), the rest the request: its "
                  f"PutItem, then its PutEvents (the emulator's alone: {floor['put_events_ms']:.1f} ms warm); "
                  f"zip arm64 {'not built' if r['zip_bytes'] is None else format(r['zip_bytes'], ',') + ' bytes'}")
    print("package: the x86_64 bootstrap (Rust); the handler's .py files (Python: boto3 and awslambdaric "
          "come with the Lambda runtime)")
    print("\nfloor x = warm p50 / the round trips on its critical path, each the emulator's median TransactWriteItems "
          "(raw http.client) for one record, or for one carrying the batch, or its PutEvents of the front door's "
          "event: " + ", ".join(f"{b} {v['one_ms']:.3f} ms and {v['batch_ms']:.3f} ms for {v['batch']}"
                                + (f", PutEvents {v['put_events_ms']:.3f} ms" if "put_events_ms" in v else "")
                                for b, v in doc["io_floor_transact_write_ms"].items()))
    print("critical paths: " + ", ".join(f"{k} {v}" for k, v in doc["critical_path_round_trips"].items()))
    for r in doc["rust_over_python"]:
        print(f"{r['function']} on {r['backend']}: Rust handles {r['rust_over_python_records_per_s']:.2f}x "
              "the records/s of Python")
    print_latency(doc)
    print_mixed(doc)
    c = doc["cost"]
    print(f"\ncost per million events, us-east-1, arm64 at {c['memory_mb']} MB, full batches of {c['batch_size']}, "
          f"from the {c['backend']} figures; prices as of {c['prices_as_of']} (benches/prices.json)")
    print(table(COST_HEADERS, cost_rows(c["per_kind"]), left=2))


def print_latency(doc: dict[str, Any]) -> None:
    """The warm records/s at each latency per AWS call, with what one call measured there."""
    rows = latency_rows(doc["rust_over_python"])
    if not rows:
        return
    lat, s = doc["latency"], doc["latency"]["settings"]
    proxied = doc["io_floor_transact_write_ms"][lat["backend"]]["one_through_proxy_ms"]
    print(f"\nwarm records/s with a fixed latency per AWS call, on {lat['backend']}: 0 ms is the run above; "
          f"otherwise {s['warm_batches']} batches after {s['warmup_batches']}, every call through the proxy, "
          "which waits that long before forwarding it\none record's TransactWriteItems through the proxy, median: "
          + ", ".join(f"{v:.2f} ms at {k} ms" for k, v in proxied.items()))
    print(table(LATENCY_HEADERS, rows, left=2))


def print_mixed(doc: dict[str, Any]) -> None:
    """stock-add on batches over a few products beside distinct ones, at each latency per call."""
    adds = {r["implementation"]: r for r in doc["results"] if r["function"] == "stock-add" and "mixed" in r}
    if not adds:
        return
    products = next(iter(adds.values()))["mixed"]["products"]
    print(f"\nstock-add, batches of 10 over {products} products (two adds to each share) beside 10 distinct "
          "products: warm records/s, every call through the proxy; TransactWriteItems per batch on the mix")
    rows = []
    for language, r in sorted(adds.items(), reverse=True):
        for latency, m in r["mixed"]["by_latency_ms"].items():
            distinct = r.get("by_latency_ms", {}).get(latency, {}).get("records_per_s")
            rows.append([language, f"{latency} ms", f"{distinct:.0f}" if distinct else "-",
                         f"{m['records_per_s']:.0f}", f"{m['records_per_s'] / distinct:.2f}" if distinct else "-",
                         f"{m['warm_p50_ms']:.1f}", f"{r['mixed']['transact_write_items_per_batch']:.1f}"])
    print(table(["", "per call", "distinct rec/s", f"{products} products rec/s", "mix/distinct",
                 "mix p50 ms", "transactions/batch"], rows, left=2))
