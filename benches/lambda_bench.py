#!/usr/bin/env python3
"""moebi's Lambda benchmark (`make bench`): the five release bootstraps, and the Python boto3
peers beside their Rust counterparts, under one Lambda Runtime API emulator (runtime_api.py),
against dynoxide, then moto for reference (the front door, a synchronous HTTP function, per
request, the others per batch). Prints a table and the cost per million events of each kind,
and writes everything to <target dir>/bench/lambda.json. On dynoxide, the functions with a
Python peer are measured warm again with a fixed latency per AWS call (--latency-ms):
what the round trips cost, each about 5 ms in a region instead of a loopback's fraction of one.

    python3 benches/lambda_bench.py [--quick] [--bootstraps DIR] [--moebi PATH] [--json PATH]
                                    [--latency-ms 0,5]

Nothing is random but the uuid4 ids of events, envelopes, messages and requests (fresh for
every record, so no record is ever a duplicate). Every answer is checked; a failure stops the
run loudly.
"""

from __future__ import annotations

import argparse
from collections import Counter
import dataclasses
import json
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))

import backends  # noqa: E402
import cost  # noqa: E402
import measure  # noqa: E402
import report  # noqa: E402
from backends import Backend  # noqa: E402
from counting_proxy import CountingProxy  # noqa: E402
from functions import (CRITICAL_PATH_ROUND_TRIPS, MIXED_PRODUCTS, PYTHON_PEERS, WIRING,  # noqa: E402
                       Implementation, functions, implementations, mixed)
from procs import BenchError  # noqa: E402
from put_events_sink import put_events_sink  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BATCH_SIZE = 10  # infra/topology.json queues.batch_size
LATENCY_BACKEND = "dynoxide"  # moto's own slowness would hide the latency


def arguments() -> argparse.Namespace:
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a smoke run: few repeats and batches")
    p.add_argument("--target-dir", type=Path, default=target, help="cargo's target directory")
    p.add_argument("--bootstraps", type=Path, help="<fn>/bootstrap[.zip] (default <target>/lambda)")
    p.add_argument("--moebi", type=Path, help="the moebi CLI (default <target>/debug/moebi)")
    p.add_argument("--json", type=Path, help="the report (default <target>/bench/lambda.json)")
    p.add_argument("--python", type=Path, default=REPO / ".venv/bench/bin/python",
                   help="the Python with boto3 and awslambdaric for the peers")
    p.add_argument("--moto", type=Path, default=REPO / ".venv/aws/bin/moto_server")
    p.add_argument("--backends", default="dynoxide,moto", help="comma-separated, in order")
    p.add_argument("--latency-ms", type=latencies, default=latencies("0,5"),
                   help="comma-separated latencies per AWS call for the warm records/s of the functions "
                        f"with a Python peer on {LATENCY_BACKEND} (0: the direct run; default 0,5)")
    args = p.parse_args()
    args.bootstraps = args.bootstraps or args.target_dir / "lambda"
    args.moebi = args.moebi or args.target_dir / "debug" / "moebi"
    args.json = args.json or args.target_dir / "bench" / "lambda.json"
    # Absolute, as the peers run in benches/python; not resolved: a venv's python is a symlink.
    for name in ("target_dir", "bootstraps", "moebi", "json", "python", "moto"):
        setattr(args, name, getattr(args, name).absolute())
    return args


def latencies(text: str) -> list[float]:
    """`--latency-ms`: distinct non-negative milliseconds, in the order given."""
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of milliseconds: {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"not a list of milliseconds >= 0: {text!r}")
    return list(dict.fromkeys(values))


def latency_key(latency_ms: float) -> str:
    """A latency as the JSON's keys and the table write it: 5, 2.5."""
    return f"{latency_ms:g}"


def settings(quick: bool, backend: str, work: Path, memory: int) -> measure.Settings:
    """How much to measure. moto slows down as its tables grow (it copies them whole on each
    transaction): it runs a short reference pass."""
    counts = {  # cold_repeats, warm_batches, warmup_batches, single_invocations, counted_batches
        ("dynoxide", False): (5, 200, 20, 50, 10), ("dynoxide", True): (2, 20, 3, 10, 3),
        ("moto", False): (3, 20, 3, 5, 2), ("moto", True): (1, 5, 1, 3, 1),
    }[(backend, quick)]
    return measure.Settings(*counts, batch_size=BATCH_SIZE, memory_mb=memory, work=work)


def per_request(s: measure.Settings) -> measure.Settings:
    """The front door's settings: one request per invocation (API Gateway invokes it per
    request), as many requests as the others get records; the same cold starts; no separate
    single-record pass (every warm invocation is one request)."""
    return dataclasses.replace(s, batch_size=1, warm_batches=s.warm_batches * s.batch_size,
                               warmup_batches=s.warmup_batches * s.batch_size, single_invocations=0,
                               counted_batches=s.counted_batches * s.batch_size)


def settings_for(fn_name: str, s: measure.Settings) -> measure.Settings:
    return per_request(s) if WIRING[fn_name] == "http" else s


def at_latency(s: measure.Settings, quick: bool) -> measure.Settings:
    """The warm runs at a latency: fewer batches (the Python peer's batch is ten round trips in
    turn, 60 ms at 5 ms each) and no single-record invocations; the rest as `s`."""
    warm_batches, warmup_batches = (10, 2) if quick else (100, 10)
    return dataclasses.replace(s, warm_batches=warm_batches, warmup_batches=warmup_batches, single_invocations=0)


def check_inputs(args: argparse.Namespace) -> None:
    missing = [f"{args.bootstraps}/{fn}/bootstrap" for fn in WIRING
               if not (args.bootstraps / fn / "bootstrap").is_file()]
    for path, hint in ((args.moebi, "cargo build --bin moebi"), (args.moto, "make test (installs moto)"),
                       (args.python, "make bench (creates .venv/bench)")):
        if not path.is_file():
            missing.append(f"{path} ({hint})")
    if missing:
        raise BenchError("missing:\n  " + "\n  ".join(missing))


def packaging(impl: Implementation, bootstraps: Path) -> tuple[int | None, int | None, str]:
    """(size of what is deployed, size of the arm64 zip, text of the arm64 zip's size)."""
    if impl.language == "python":
        assert impl.cwd is not None
        files = [impl.cwd / f for f in ("contract.py", "store.py", "sqs_batch.py", f"{impl.command[-1].split('.')[0]}.py")]
        return sum(f.stat().st_size for f in files), None, "—"
    fn_dir = bootstraps / impl.function.name
    zipped = fn_dir / "bootstrap.zip"
    zip_bytes = zipped.stat().st_size if zipped.is_file() else None
    zip_text = f"{zip_bytes / (1 << 20):.2f} MB" if zip_bytes is not None else "not built: run make build"
    return (fn_dir / "bootstrap").stat().st_size, zip_bytes, zip_text


def run_one(impl: Implementation, backend: Backend, s: measure.Settings, floor: dict[str, Any],
            bootstraps: Path) -> dict[str, Any]:
    """Every measurement of one implementation on one backend (the front door: per request,
    `s` with a batch size of 1, and no cold start of a batch)."""
    label = f"{impl.function.name} ({impl.language}) on {backend.name}"
    print(f"  {label}: cold starts", flush=True)
    cold1 = measure.cold_starts(impl, backend, s, 1)
    cold10 = measure.cold_starts(impl, backend, s, s.batch_size) if s.batch_size > 1 else []
    unit = "requests" if WIRING[impl.function.name] == "http" else "batches"
    print(f"  {label}: {s.warm_batches} warm {unit}", flush=True)
    warm = measure.warm(impl, backend, s)
    calls = measure.calls_per_record(impl, backend, s)
    p50 = measure.percentile(warm.durations_ns, 50)
    trips = CRITICAL_PATH_ROUND_TRIPS.get((impl.function.name, impl.language))
    floor_ms = sum(floor[f"{kind}_ms"] for kind in trips) if trips else None
    size, zip_bytes, zip_text = packaging(impl, bootstraps)
    return {
        "function": impl.function.name, "implementation": impl.language, "backend": backend.name,
        "wiring": WIRING[impl.function.name], "records_per_invocation": s.batch_size,
        "cold_1_ms": measure.median_ms([c["first_answer_ms"] for c in cold1]),
        "cold_10_ms": measure.median_ms([c["first_answer_ms"] for c in cold10]) if cold10 else None,
        "cold_1_init_ms": measure.median_ms([c["init_ms"] for c in cold1]),
        "cold_samples": {"1": cold1, **({str(s.batch_size): cold10} if cold10 else {})},
        "warm_p50_ms": p50, "warm_p99_ms": measure.percentile(warm.durations_ns, 99),
        "warm_single_p50_ms": measure.percentile(warm.single_ns, 50) if warm.single_ns else None,
        "records_per_s": warm.records / (warm.wall_ns / 1e9),
        "warm_batches": len(warm.durations_ns), "peak_rss_kb": warm.peak_rss_kb,
        "calls_per_record": calls, "critical_path_round_trips": trips,
        "floor_ms": floor_ms, "floor_ratio": p50 / floor_ms if floor_ms else None,
        "package_bytes": size, "zip_bytes": zip_bytes, "zip_text": zip_text,
    }


def latency_runs(impl: Implementation, backend: Backend, s: measure.Settings, latencies_ms: list[float],
                 direct: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Warm records/s with each latency per AWS call. 0 ms is the direct run `direct` already
    measured (no proxy, as the rest of the table); the others go through the counting proxy."""
    out = {}
    for latency in latencies_ms:
        if latency == 0:
            per_s, p50, batches = direct["records_per_s"], direct["warm_p50_ms"], direct["warm_batches"]
        else:
            print(f"  {impl.function.name} ({impl.language}) on {backend.name}: {s.warm_batches} warm batches "
                  f"at {latency:g} ms per call", flush=True)
            warm = measure.warm_at_latency(impl, backend, s, latency)
            per_s, p50 = warm.records / (warm.wall_ns / 1e9), measure.percentile(warm.durations_ns, 50)
            batches = len(warm.durations_ns)
        out[latency_key(latency)] = {"records_per_s": per_s, "warm_p50_ms": p50, "warm_batches": batches,
                                     "through_proxy": latency != 0}
    return out


def proxied_round_trip_ms(url: str, latencies_ms: list[float], samples: int) -> dict[str, float]:
    """One record's TransactWriteItems through the proxy at each latency, median: what a call
    costs the functions there (the latency, and the proxy's own forwarding)."""
    out = {}
    for latency in latencies_ms:
        proxy = CountingProxy({"DynamoDB_": url}, default=url, latency_ms=latency).start()
        try:
            out[latency_key(latency)] = backends.median_ms(backends.transact_round_trip_ns(proxy.url, samples))
        finally:
            proxy.stop()
    return out


def run_backend(name: str, events_url: str, args: argparse.Namespace, s: measure.Settings,
                fns: list, results: list[dict[str, Any]], floors: dict[str, dict[str, Any]]) -> None:
    """Every implementation of every function on a fresh `name` backend of its own."""
    with backends.serving(name, args.moebi, args.moto, s.work, events_url) as backend:
        samples = 20 if args.quick else 200
        one = backends.transact_round_trip_ns(backend.dynamodb_url, samples)
        batch = backends.transact_round_trip_ns(backend.dynamodb_url, samples // 2, s.batch_size)
        floors[name] = {"one_ms": backends.median_ms(one), "batch": s.batch_size,
                        "batch_ms": backends.median_ms(batch)}
        for fn in (f for f in fns if WIRING[f.name] == "http"):  # the front door's publish
            floors[name]["put_events_ms"] = backends.median_ms(backends.put_events_round_trip_ns(
                backend.eventbridge_url, fn.region, fn.published, samples // 2))
        if name == LATENCY_BACKEND:
            floors[name]["one_through_proxy_ms"] = proxied_round_trip_ms(backend.dynamodb_url, args.latency_ms,
                                                                         samples)
    print(f"{name}: TransactWriteItems (raw http.client), median {floors[name]['one_ms']:.3f} ms for one record, "
          f"{floors[name]['batch_ms']:.3f} ms for one carrying {s.batch_size}"
          + (f"; PutEvents of the front door's event {floors[name]['put_events_ms']:.3f} ms"
             if "put_events_ms" in floors[name] else ""), flush=True)
    for fn in (f for f in fns if WIRING[f.name] == "http"):  # its first answer without moto's PutEvents
        with backends.serving(name, args.moebi, args.moto, s.work, events_url) as backend, \
                put_events_sink() as sink:
            rust = implementations(fn, args.bootstraps, args.python, REPO / "benches" / "python")[0]
            colds = measure.cold_starts(rust, dataclasses.replace(backend, eventbridge_url=sink), settings_for(fn.name, s), 1)
            floors[name]["front_door_cold_1_sink_ms"] = measure.median_ms([c["first_answer_ms"] for c in colds])
            each = ", ".join("%.1f" % c["first_answer_ms"] for c in colds)
            print(f"{name}: front-door's exec -> first answer with PutEvents answered at once (a stand-in, not moto): "
                  f"median {floors[name]['front_door_cold_1_sink_ms']:.1f} ms of {len(colds)} ({each})", flush=True)
    for fn in fns:
        for impl in implementations(fn, args.bootstraps, args.python, REPO / "benches" / "python"):
            fn.stock_added.clear()
            with backends.serving(name, args.moebi, args.moto, s.work, events_url) as backend:
                results.append(run_one(impl, backend, settings_for(fn.name, s), floors[name], args.bootstraps))
                if name == LATENCY_BACKEND and fn.name in PYTHON_PEERS:
                    results[-1]["by_latency_ms"] = latency_runs(impl, backend, at_latency(s, args.quick),
                                                                args.latency_ms, results[-1])
                if fn.name == "stock-add":
                    check_stock(backend, fn, impl.language)
                if name == LATENCY_BACKEND and fn.name == "stock-add":
                    results[-1]["mixed"] = mixed_runs(impl, backend, at_latency(s, args.quick), args.latency_ms)


def mixed_runs(impl: Implementation, backend: Backend, s: measure.Settings,
               latencies_ms: list[float]) -> dict[str, Any]:
    """stock-add's warm records/s on batches over a few products ([`mixed`]) at each latency per
    AWS call, through the counting proxy (0 ms too), with its TransactWriteItems per batch."""
    fn = mixed(impl.function)
    impl = dataclasses.replace(impl, function=fn)
    out: dict[str, Any] = {"products": MIXED_PRODUCTS, "by_latency_ms": {}}
    for latency in latencies_ms:
        print(f"  stock-add ({impl.language}) on {backend.name}: {s.warm_batches} warm batches over "
              f"{MIXED_PRODUCTS} products at {latency:g} ms per call", flush=True)
        warm = measure.warm_at_latency(impl, backend, s, latency)
        out["by_latency_ms"][latency_key(latency)] = {
            "records_per_s": warm.records / (warm.wall_ns / 1e9),
            "warm_p50_ms": measure.percentile(warm.durations_ns, 50), "warm_batches": len(warm.durations_ns)}
    calls = measure.calls_per_record(impl, backend, s)
    transact = calls.get("DynamoDB_20120810.TransactWriteItems", {}).get("calls", 0.0)
    out["transact_write_items_per_batch"] = transact * s.batch_size
    check_stock(backend, fn, f"{impl.language}, {MIXED_PRODUCTS} products")
    return out


def check_stock(backend: Backend, added: Any, language: str) -> None:
    """Every unit sent to stock-add is in the shares, once: exactly once held."""
    stored = backends.stock_totals(backend.dynamodb_url, sorted(added.stock_added), added.region)
    if stored != dict(added.stock_added):
        raise BenchError(f"stock-add ({language}) on {backend.name}: the shares hold {stored}, "
                         f"but {dict(added.stock_added)} was added")
    print(f"  stock-add ({language}) on {backend.name}: the shares hold every add exactly once "
          f"({sum(stored.values())} units)", flush=True)


def ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rust records/s over Python records/s, per function with a peer and backend, and at each
    latency per AWS call where measured (both records/s and batch p50s beside the ratio)."""
    out = []
    for r in results:
        if r["implementation"] != "python":
            continue
        rust = next(x for x in results if x["implementation"] == "rust"
                    and x["function"] == r["function"] and x["backend"] == r["backend"])
        ratio = {"function": r["function"], "backend": r["backend"],
                 "rust_over_python_records_per_s": rust["records_per_s"] / r["records_per_s"]}
        if "by_latency_ms" in r:
            ratio["by_latency_ms"] = {
                latency: {"rust_records_per_s": rust["by_latency_ms"][latency]["records_per_s"],
                          "python_records_per_s": py["records_per_s"],
                          "rust_warm_p50_ms": rust["by_latency_ms"][latency]["warm_p50_ms"],
                          "python_warm_p50_ms": py["warm_p50_ms"],
                          "rust_over_python": rust["by_latency_ms"][latency]["records_per_s"] / py["records_per_s"]}
                for latency, py in r["by_latency_ms"].items()}
        out.append(ratio)
    return out


def measured_for_cost(results: list[dict[str, Any]], backend: str) -> dict[str, dict[str, cost.Measured]]:
    out: dict[str, dict[str, cost.Measured]] = {}
    for r in results:
        if r["backend"] == backend:
            out.setdefault(r["function"], {})[r["implementation"]] = cost.Measured(
                r["warm_p50_ms"], r["warm_single_p50_ms"], r["calls_per_record"])
    return out


def main() -> int:
    args = arguments()
    check_inputs(args)
    topology = json.loads((REPO / "infra" / "topology.json").read_text())
    prices = json.loads((REPO / "benches" / "prices.json").read_text())
    memory = cost.memory_mb(REPO / "infra" / "variables.tf")
    facts = report.machine()
    if facts["loadavg_at_start"][0] > 0.5 * (facts["nproc"] or 1):
        print(f"warning: load average {facts['loadavg_at_start'][0]:.1f} on {facts['nproc']} CPUs: "
              "another process is busy, figures will be noisy", file=sys.stderr)
    names = [fn.name for fn in functions(topology)]
    built = report.builds(REPO, args.bootstraps, names)
    work = Path(tempfile.mkdtemp(prefix="moebi-bench-"))
    results: list[dict[str, Any]] = []
    floors: dict[str, dict[str, Any]] = {}
    used: dict[str, measure.Settings] = {}
    moto = None
    try:
        moto = backends.start_moto(args.moto, args.moebi, work)  # EventBridge of the dynoxide runs
        fns = functions(topology)
        for name in args.backends.split(","):
            used[name] = settings(args.quick, name, work, memory)
            run_backend(name, moto.url, args, used[name], fns, results, floors)
    finally:
        if moto:
            moto.stop()
        shutil.rmtree(work, ignore_errors=True)
    rebuilt = [fn for fn in names if report.builds(REPO, args.bootstraps, [fn])[fn] != built[fn]]
    cost_backend = args.backends.split(",")[0]
    costs = cost.costs(measured_for_cost(results, cost_backend), topology, prices, memory, BATCH_SIZE)
    doc = {"machine": {**facts, "loadavg_at_end": list(os.getloadavg())},
           "builds": built, "rebuilt_during_run": rebuilt,
           "settings": {b: {k: v for k, v in vars(x).items() if k != "work"} for b, x in used.items()},
           "settings_per_request": {"functions": sorted(f for f, w in WIRING.items() if w == "http"),
                                    "by_backend": {b: {k: v for k, v in vars(per_request(x)).items() if k != "work"}
                                                   for b, x in used.items()}},
           "quick": args.quick,
           "latency": {"ms": args.latency_ms, "backend": LATENCY_BACKEND, "functions": sorted(PYTHON_PEERS),
                       "settings": {k: v for k, v in vars(at_latency(used[LATENCY_BACKEND], args.quick)).items()
                                    if k != "work"} if LATENCY_BACKEND in used else None,
                       "how": "0 ms: the direct warm run; above, every AWS call through the counting proxy, "
                              "which waits that long before forwarding it (concurrent calls wait together)"},
           "io_floor_transact_write_ms": floors, "critical_path_round_trips":
               {f"{f} {lang}": " + ".join(f"{n} {k}" for k, n in Counter(kinds).items())
                for (f, lang), kinds in CRITICAL_PATH_ROUND_TRIPS.items()},
           "results": results, "rust_over_python": ratios(results),
           "cost": {"backend": cost_backend, "memory_mb": memory, "batch_size": BATCH_SIZE,
                    "prices_as_of": prices["as_of"], "prices_source": prices["source"], "per_kind": costs}}
    report.print_report(doc)
    report.warn_about(doc)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwritten: {args.json}")
    return 0


if __name__ == "__main__":
    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt  # the cleanups run, as on Ctrl-C

    signal.signal(signal.SIGTERM, interrupted)
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"\nbench FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        sys.exit(130)
