#!/usr/bin/env python3
"""Checks what the Lambda bootstraps printed under scripts/lambda-test.sh: their metrics in
CloudWatch's embedded metric format (EMF) and their log lines.

usage: emf-check.py FUNCTION LOG [--text-warn]

- every EMF document is in namespace `moebi`, with dimensions Function (= FUNCTION) and Region
  (and ErrorKind for RecordsFailed), and carries the invocation's RequestId and TraceId;
- the metrics add up: each record of a batch is handled or failed (by kind), has one
  EffectLatency, and each bootstrap process counted one cold start;
- JSON log lines of an invocation carry its request id and trace id, and a record's its event id;
- with --text-warn (AWS_LAMBDA_LOG_FORMAT=Text, AWS_LAMBDA_LOG_LEVEL=WARN): no JSON log line,
  no INFO line, and the metrics still there.
Prints a summary line; exits 1 naming the first problem.
"""
import json
import sys

REGIONS = {"us-west-2", "us-east-1", "eu-west-1"}


def fail(why):
    sys.exit(f"emf-check {FUNCTION}: {why}")


FUNCTION, LOG = sys.argv[1], sys.argv[2]
TEXT_WARN = "--text-warn" in sys.argv[3:]
docs, logs, text = [], [], []
for line in open(LOG, encoding="utf-8", errors="replace"):
    line = line.strip()
    try:
        value = json.loads(line)
    except ValueError:
        text.append(line)
        continue
    if isinstance(value, dict) and "_aws" in value:
        docs.append(value)
    elif isinstance(value, dict):
        logs.append(value)

if not docs:
    fail(f"no EMF line in {LOG}")
total = {}
for d in docs:
    (ns,) = d["_aws"]["CloudWatchMetrics"]
    if ns["Namespace"] != "moebi":
        fail(f"namespace {ns['Namespace']}")
    (dims,) = ns["Dimensions"]
    if dims[:2] != ["Function", "Region"]:
        fail(f"dimensions {dims}")
    if d["Function"] != FUNCTION or d["Region"] not in REGIONS:
        fail(f"Function {d['Function']!r}, Region {d['Region']!r}")
    if not d.get("RequestId") or "TraceId" not in d:
        fail(f"no RequestId/TraceId property in {d}")
    for m in ns["Metrics"]:
        name = m["Name"]
        if name == "RecordsFailed":
            if dims != ["Function", "Region", "ErrorKind"] or d["ErrorKind"] not in ("retryable", "permanent"):
                fail(f"RecordsFailed without its ErrorKind: {d}")
            name = f"RecordsFailed.{d['ErrorKind']}"
        elif len(dims) != 2:
            fail(f"{name} with extra dimensions {dims}")
        if name == "EffectLatency" and m.get("Unit") != "Milliseconds":
            fail(f"EffectLatency in {m.get('Unit')}")
        value = d[m["Name"]]
        values = value if isinstance(value, list) else [value]
        key = name + (".n" if isinstance(value, list) else "")
        total[key] = total.get(key, 0) + (len(values) if isinstance(value, list) else value)
        if isinstance(value, list):
            total[name] = total.get(name, 0) + sum(values)

records = int(total.get("BatchSize", 0))
handled = total.get("RecordsHandled", 0)
failed = total.get("RecordsFailed.retryable", 0) + total.get("RecordsFailed.permanent", 0)
if handled + failed != records:
    fail(f"{handled} handled + {failed} failed != {records} records in the batches")
if total.get("EffectLatency.n", 0) != records:
    fail(f"{total.get('EffectLatency.n', 0)} effect latencies for {records} records")
starts = sum(1 for l in logs if l.get("fields", {}).get("message") == "started")
starts += sum(1 for l in text if "started" in l and "INFO" in l)
if not TEXT_WARN and total.get("ColdStart", 0) != starts:
    fail(f"{total.get('ColdStart', 0)} cold starts for {starts} bootstrap starts")

for l in logs:
    spans = {k: v for s in l.get("spans", []) for k, v in s.items()}
    if "request_id" in spans or any(s.get("name") == "invocation" for s in l.get("spans", [])):
        if not spans.get("request_id") or "trace_id" not in spans:
            fail(f"a log line of an invocation without its request and trace ids: {l}")
    if any(s.get("name") == "handle" for s in l.get("spans", [])) and not spans.get("event_id"):
        fail(f"a record's log line without its event id: {l}")

if TEXT_WARN:
    if logs:
        fail(f"AWS_LAMBDA_LOG_FORMAT=Text, yet JSON log lines: {logs[0]}")
    if any(" INFO " in l or l.startswith("INFO") for l in text):
        fail("AWS_LAMBDA_LOG_LEVEL=WARN, yet INFO lines")

print(f"{FUNCTION}: {len(docs)} EMF documents, {records} records: {handled} handled "
      f"({total.get('Duplicates', 0)} duplicates), {failed} failed; "
      f"{total.get('ColdStart', 0)} cold starts; {len(logs)} JSON log lines checked")
