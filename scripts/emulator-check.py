"""Checks, through the AWS CLI, what is deployed in an AWS API emulator (scripts/deploy-emulator.sh).

Run with the AWS CLI's own Python (.venv/awscli/bin/python): every call is an AWS CLI command,
`aws --endpoint-url URL --region R --output json <service> <operation> ...`, run by the CLI's
driver inside this one process (a new `aws` process per call costs a second of start-up).
A failing check prints the command to repeat it by hand.

  emulator-check.py wiring   URL TOPOLOGY RULES_JSON   rules -> queues / functions / other regions' buses;
                                                       event source mappings, async invoke configs, dashboards
  emulator-check.py users    URL TOPOLOGY OUTPUTS_JSON MOEBI SESSIONS FRONT_JSON
                                                       users made as an operator would, signed in with moebi login
  emulator-check.py scenario URL TOPOLOGY FRONT_JSON IDS_JSON
                                                       the seed's scenario through the front door (moebi --engine api)
  emulator-check.py refusals URL TOPOLOGY FRONT_JSON STATE_DIR MINISTACK_PYTHON IDS_JSON
                                                       what the front door refuses (401/403/400/413/409), nothing written
  emulator-check.py landed   URL TOPOLOGY              the scenario's inboxes and shares, every region
  emulator-check.py twice    URL IDS_JSON              events published again change nothing
  emulator-check.py bad      URL IDS_JSON              bad events end in a DLQ, with their reason
  emulator-check.py logs     URL IDS_JSON DIR EMF_CHECK   CloudWatch Logs: log lines, EMF, one event followed
  emulator-check.py kill     URL CODE_DIR IDS_JSON     SIGKILL of a bootstrap with a batch in hand
  emulator-check.py dump     URL TOPOLOGY OUT_JSON     tables, queues, rules, targets, mappings, normalised
  emulator-check.py compare  SETUP_JSON TERRAFORM_JSON what `moebi setup` makes, Terraform makes too

The scenario is played by people and stores signed in to the user pool, each with the moebi CLI
(`moebi --engine api`) at their home region's HTTP API, whose front door publishes; it never
pumps: every effect is a Lambda bootstrap's, run by the emulator. The later checks publish as
moebi's own functions do (PutEvents of source `moebi`, detail-type the kind, detail the event's
JSON, on the `moebi` bus of a region). Each wait polls until the effect shows or its deadline
passes.

Exit status: 0 when every check holds, 1 otherwise (each failure on stderr), 2 on usage errors.
"""

import base64
import contextlib
import datetime
import io
import json
import os
import secrets
import shlex
import signal
import string
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from awscli.clidriver import create_clidriver

DRIVER = create_clidriver()
BUS = "moebi"
TABLE = "moebi"
failures = []


def fail(message):
    failures.append(message)
    print("  FAILED: " + message, file=sys.stderr)


def aws(url, region, *args):
    """Runs one AWS CLI command; answers its JSON output (None if it failed)."""
    argv = ["--endpoint-url", url, "--region", region, "--output", "json", *args]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = DRIVER.main(argv)
        except SystemExit as e:  # the CLI's argument parser exits rather than returning
            rc = e.code if isinstance(e.code, int) else 2
    if rc != 0:
        fail("aws %s: exit %s: %s" % (" ".join(shlex.quote(a) for a in argv), rc, err.getvalue().strip()))
        return None
    return json.loads(out.getvalue() or "{}")


def regions_of(topology_file):
    return json.load(open(topology_file))["regions"]


def queue_name(arn):
    return arn.split(":")[5]


# --- dump: a normalised listing of what moebi uses, per region ---------------------------------


def dump(url, regions):
    out = {}
    for region in regions:
        entry = out.setdefault(region, {"table": None, "bus": None, "queues": {}, "rules": {}, "mappings": {}})
        table = (aws(url, region, "dynamodb", "describe-table", "--table-name", TABLE) or {}).get("Table")
        if table:
            ttl = aws(url, region, "dynamodb", "describe-time-to-live", "--table-name", TABLE) or {}
            ttl = ttl.get("TimeToLiveDescription", {})
            stream = table.get("StreamSpecification") or {}
            entry["table"] = {
                "key_schema": [[k["AttributeName"], k["KeyType"]] for k in table["KeySchema"]],
                "attributes": {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]},
                "billing_mode": (table.get("BillingModeSummary") or {}).get("BillingMode"),
                "stream_view_type": stream.get("StreamViewType") if stream.get("StreamEnabled") else None,
                "ttl_attribute": ttl.get("AttributeName") if ttl.get("TimeToLiveStatus") == "ENABLED" else None,
            }
        bus = aws(url, region, "events", "describe-event-bus", "--name", BUS)
        entry["bus"] = bus.get("Arn") if bus else None
        for q in (aws(url, region, "sqs", "list-queues", "--queue-name-prefix", "moebi") or {}).get("QueueUrls", []):
            a = (aws(url, region, "sqs", "get-queue-attributes", "--queue-url", q, "--attribute-names", "All") or {}).get("Attributes", {})
            redrive = json.loads(a["RedrivePolicy"]) if a.get("RedrivePolicy") else None
            entry["queues"][q.rsplit("/", 1)[1]] = {
                "visibility_timeout_seconds": int(a.get("VisibilityTimeout", -1)),
                "message_retention_seconds": int(a.get("MessageRetentionPeriod", -1)),
                "redrive": {"dlq": queue_name(redrive["deadLetterTargetArn"]), "max_receive_count": int(redrive["maxReceiveCount"])} if redrive else None,
            }
        for m in (aws(url, region, "lambda", "list-event-source-mappings") or {}).get("EventSourceMappings", []):
            entry["mappings"][queue_name(m["EventSourceArn"])] = {
                "function": m["FunctionArn"].rsplit(":", 1)[-1],
                "state": m.get("State"),
                "batch_size": m.get("BatchSize"),
                "report_batch_item_failures": "ReportBatchItemFailures" in m.get("FunctionResponseTypes", []),
            }
        for rule in (aws(url, region, "events", "list-rules", "--event-bus-name", BUS) or {}).get("Rules", []):
            targets = (aws(url, region, "events", "list-targets-by-rule", "--rule", rule["Name"], "--event-bus-name", BUS) or {}).get("Targets", [])
            entry["rules"][rule["Name"]] = {
                "pattern": json.loads(rule["EventPattern"]),
                "state": rule.get("State"),
                "targets": sorted(({"arn": t["Arn"], "role_arn": t.get("RoleArn")} for t in targets), key=lambda t: t["arn"]),
            }
    return out


# --- compare: everything `moebi setup` makes exists, the same, in Terraform's deployment -------

# Differences that are known and harmless, said once instead of failing.
KNOWN = {
    "role_arn": "the role a cross-region target names: `moebi setup` names `moebi-forward` (and creates "
    "no role: the emulator checks none); Terraform creates one per region, `moebi-forward-<region>`",
    "standin": "`moebi setup` creates no function (src/engine/aws/setup.rs): the rules of the EventBridge-invoked "
    "functions (moebi-reply, stock-status) target a stand-in queue `moebi-<function>` there, which `moebi pump` "
    "plays as an asynchronous invocation; Terraform's target the function itself, so the stand-in queues exist "
    "only in setup's listing",
    "mappings": "`moebi setup` makes no SQS event source mapping (no function to invoke: `moebi pump` receives "
    "the queues); Terraform maps moebi-chat-send and moebi-stock-add to their functions",
    "push": "live delivery is Terraform's only (infra/modules/region/live.tf): each region's inbox stream is "
    "mapped to moebi-push; `moebi setup` makes no function, so no mapping, no WebSocket API",
}
STANDINS = ("moebi-reply", "stock-status")


def standin_for(arn_setup, arn_terraform):
    """Whether setup's target is the stand-in queue of the function Terraform's target is."""
    s, t = arn_setup.split(":"), arn_terraform.split(":")
    return (len(s) == 6 and len(t) == 7 and s[2] == "sqs" and t[2] == "lambda" and t[5] == "function"
            and s[3:5] == t[3:5] and s[5] == t[6] and s[5][len("moebi-"):] in STANDINS)


def compare(setup, terraform):
    known = set()
    for region, s in sorted(setup.items()):
        before = len(failures)
        t = terraform.get(region)
        if t is None:
            fail("%s: Terraform deployed nothing in this region" % region)
            continue
        if s["table"] != t["table"]:
            fail("%s: table %s: setup %s, Terraform %s" % (region, TABLE, s["table"], t["table"]))
        if s["bus"] != t["bus"]:
            fail("%s: bus: setup %s, Terraform %s" % (region, s["bus"], t["bus"]))
        for name, q in sorted(s["queues"].items()):
            # Every function runs in every region (Terraform deploys them all, and a standby
            # applies an evacuated region's events), so setup makes every stand-in everywhere.
            if name not in t["queues"] and name[len("moebi-"):] in STANDINS:
                known.add("standin")
            elif name not in t["queues"]:
                fail("%s: queue %s: made by setup, not by Terraform" % (region, name))
            elif q != t["queues"][name]:
                fail("%s: queue %s: setup %s, Terraform %s" % (region, name, q, t["queues"][name]))
        for name, r in sorted(s["rules"].items()):
            tr = t["rules"].get(name)
            if tr is None:
                fail("%s: rule %s: made by setup, not by Terraform" % (region, name))
                continue
            if r["pattern"] != tr["pattern"]:
                fail("%s: rule %s: pattern: setup %s, Terraform %s" % (region, name, json.dumps(r["pattern"], sort_keys=True), json.dumps(tr["pattern"], sort_keys=True)))
            if r["state"] != tr["state"]:
                fail("%s: rule %s: state: setup %s, Terraform %s" % (region, name, r["state"], tr["state"]))
            sa, ta = [x["arn"] for x in r["targets"]], [x["arn"] for x in tr["targets"]]
            if len(sa) == len(ta) and all(a == b or standin_for(a, b) for a, b in zip(sa, ta)):
                if sa != ta:
                    known.add("standin")
            else:
                fail("%s: rule %s: targets: setup %s, Terraform %s" % (region, name, r["targets"], tr["targets"]))
            for a, b in zip(r["targets"], tr["targets"]):
                if a["role_arn"] != b["role_arn"]:
                    if bool(a["role_arn"]) != bool(b["role_arn"]):
                        fail("%s: rule %s: target %s: role: setup %s, Terraform %s" % (region, name, a["arn"], a["role_arn"], b["role_arn"]))
                    known.add("role_arn")
        for q, m in sorted(s.get("mappings", {}).items()):
            if t.get("mappings", {}).get(q) != m:
                fail("%s: mapping of %s: setup %s, Terraform %s" % (region, q, m, t.get("mappings", {}).get(q)))
        for q, m in sorted(t.get("mappings", {}).items()):
            if q not in s.get("mappings", {}):
                known.add("mappings")
                if "/stream/" in q:  # the inbox stream -> push (live delivery)
                    known.add("push")
                    if m["function"] != "moebi-push" or m["state"] != "Enabled" or not m["report_batch_item_failures"]:
                        fail("%s: Terraform's mapping of the inbox stream %s: %s (want moebi-push, Enabled, ReportBatchItemFailures)" % (region, q, m))
                    continue
                if q not in t["queues"] or m["function"] != q or m["state"] != "Enabled" or not m["report_batch_item_failures"]:
                    fail("%s: Terraform's mapping of %s: %s (want its own function, Enabled, ReportBatchItemFailures)" % (region, q, m))
        extra_q = sorted(set(t["queues"]) - set(s["queues"]))
        extra_r = sorted(set(t["rules"]) - set(s["rules"]))
        same = "same" if len(failures) == before else "%d difference(s) above in" % (len(failures) - before)
        print("  %s: %s table, bus, %d queues and %d rules (with their patterns and targets) as setup's; Terraform only: queues %s, rules %s"
              % (region, same, len(s["queues"]), len(s["rules"]), ", ".join(extra_q) or "none", ", ".join(extra_r) or "none"))
        if extra_r:
            fail("%s: Terraform makes rules that `moebi setup` does not: %s" % (region, ", ".join(extra_r)))
    for k in sorted(known):
        print("  known difference: " + KNOWN[k])


# --- wiring: Terraform's rules output, as deployed ---------------------------------------------


def mapping_of(url, region, function, account):
    """The queue's SQS event source mapping, which must invoke its function, enabled, with
    partial batch responses; answers a description."""
    queue = "arn:aws:sqs:%s:%s:moebi-%s" % (region, account, function)
    got = (aws(url, region, "lambda", "list-event-source-mappings", "--event-source-arn", queue) or {}).get("EventSourceMappings", [])
    if len(got) != 1:
        fail("%s: queue moebi-%s has %d event source mappings, want 1" % (region, function, len(got)))
        return "no mapping"
    m = got[0]
    fn = m.get("FunctionArn", "").rsplit(":", 1)[-1]
    if fn != "moebi-" + function or m.get("State") != "Enabled" or "ReportBatchItemFailures" not in m.get("FunctionResponseTypes", []):
        fail("%s: mapping of moebi-%s: function %s, state %s, response types %s (want moebi-%s, Enabled, ReportBatchItemFailures)"
             % (region, function, fn, m.get("State"), m.get("FunctionResponseTypes"), function))
    return "mapping to %s: %s, batch %s, %s, max concurrency %s" % (
        fn, m.get("State"), m.get("BatchSize"), ",".join(m.get("FunctionResponseTypes", [])),
        (m.get("ScalingConfig") or {}).get("MaximumConcurrency"))


def async_config_of(url, region, function, account):
    """An EventBridge-invoked function's async retries and on-failure destination (its DLQ)."""
    got = aws(url, region, "lambda", "get-function-event-invoke-config", "--function-name", "moebi-" + function) or {}
    dest = ((got.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
    want = "arn:aws:sqs:%s:%s:moebi-%s-dlq" % (region, account, function)
    if dest != want or got.get("MaximumRetryAttempts") is None:
        fail("%s: moebi-%s: on-failure destination %s, retries %s (want %s)" % (region, function, dest, got.get("MaximumRetryAttempts"), want))
    state = (aws(url, region, "lambda", "get-function-configuration", "--function-name", "moebi-" + function) or {}).get("State")
    return "%s, %s retries, then %s" % (state, got.get("MaximumRetryAttempts"), (dest or "nowhere").rsplit(":", 1)[-1])


def wiring(url, regions, rules):
    account = None
    for region in regions:
        deployed = {r["Name"]: r for r in (aws(url, region, "events", "list-rules", "--event-bus-name", BUS) or {}).get("Rules", [])}
        queues = {u.rsplit("/", 1)[1] for u in (aws(url, region, "sqs", "list-queues", "--queue-name-prefix", "moebi") or {}).get("QueueUrls", [])}
        want = {"moebi-" + name: rule for name, rule in rules.get(region, {}).items()}
        for name in sorted(set(deployed) - set(want)):
            fail("%s: rule %s is deployed but not in Terraform's rules" % (region, name))
        lines = []
        for name, rule in sorted(want.items()):
            got = deployed.get(name)
            if got is None:
                fail("%s: rule %s is missing on bus %s" % (region, name, BUS))
                continue
            if json.loads(got["EventPattern"]) != rule["pattern"]:
                fail("%s: rule %s: pattern %s, want %s" % (region, name, got["EventPattern"], json.dumps(rule["pattern"])))
            targets = (aws(url, region, "events", "list-targets-by-rule", "--rule", name, "--event-bus-name", BUS) or {}).get("Targets", [])
            if len(targets) != 1:
                fail("%s: rule %s has %d targets, want 1" % (region, name, len(targets)))
                continue
            arn = targets[0]["Arn"]
            account = account or arn.split(":")[4]
            kind, target = rule["target"]["kind"], rule["target"]["name"]
            if kind == "queue":
                want_arn = "arn:aws:sqs:%s:%s:moebi-%s" % (region, account, target)
                ok = arn == want_arn and "moebi-" + target in queues
                what = "queue moebi-%s -> %s" % (target, mapping_of(url, region, target, account))
            elif kind == "function":
                # The real function (no emulator_lacks_lambda_invoke stand-in queue).
                want_arn = "arn:aws:lambda:%s:%s:function:moebi-%s" % (region, account, target)
                ok = arn == want_arn
                what = "function moebi-%s (%s)" % (target, async_config_of(url, region, target, account))
            else:
                want_arn = "arn:aws:events:%s:%s:event-bus/%s" % (target, account, BUS)
                bus = aws(url, target, "events", "describe-event-bus", "--name", BUS)
                ok = arn == want_arn and bus is not None and bus.get("Arn") == want_arn and bool(targets[0].get("RoleArn"))
                what = "bus %s of %s, role %s" % (BUS, target, (targets[0].get("RoleArn") or "none").rsplit("/", 1)[-1])
            if not ok:
                fail("%s: rule %s targets %s, want %s (which must exist)" % (region, name, arn, want_arn))
            lines.append("%s -> %s" % (name, what))
        board = aws(url, region, "cloudwatch", "get-dashboard", "--dashboard-name", "moebi-" + region)
        widgets = json.loads(board.get("DashboardBody") or "{}").get("widgets", []) if board else []
        metrics = sum(len(w.get("properties", {}).get("metrics", [])) for w in widgets)
        if not metrics:
            fail("%s: dashboard moebi-%s is missing or shows no metric" % (region, region))
        lines.append("dashboard moebi-%s: %d widgets, %d metrics" % (region, len(widgets), metrics))
        print("  %s: %d rules on bus %s, as Terraform's rules say:" % (region, len(lines) - 1, BUS))
        for line in lines:
            print("    " + line)


# --- landed: the scenario's effects, in every region's table ------------------------------------


def query(url, region, pk):
    values = json.dumps({":pk": {"S": pk}})
    got = aws(url, region, "dynamodb", "query", "--table-name", TABLE, "--key-condition-expression", "pk = :pk", "--expression-attribute-values", values)
    return (got or {}).get("Items", [])


def landed(url, regions):
    for region in regions:
        inbox = {}
        for who in ("alex", "kate", "moebi"):
            inbox[who] = [(i["from"]["S"], i["text"]["S"], i.get("in_reply_to", {}).get("S")) for i in query(url, region, "inbox#" + who)]
        chats = {who: [(f, t) for f, t, _ in entries if f in ("alex", "kate", "moebi")] for who, entries in inbox.items()}
        want = {"alex": [("kate", "how are you?"), ("moebi", "chicken?")], "kate": [("alex", "hi")], "moebi": [("alex", "hi")]}
        if chats != want:
            fail("%s: chat messages in the inboxes %s, want %s" % (region, chats, want))
        replies = [r for f, t, r in inbox["alex"] if f == "moebi"]
        if len(replies) != 1 or not replies[0]:
            fail("%s: Moebi's answer in alex's inbox does not reply to a message: %s" % (region, inbox["alex"]))
        answers = sorted(t for f, t, _ in inbox["kate"] if f not in ("alex", "kate", "moebi"))
        if answers != sorted(["nike: 35", "there is no product puma", "adidas: 35, nike: 35"]):
            fail("%s: stock answers in kate's inbox %s" % (region, answers))
        shares = stock_of(url, region)
        want_shares = {"nike#us-west-2": 30, "nike#eu-west-1": 5, "adidas#eu-west-1": 35}
        if shares != want_shares:
            fail("%s: stock shares %s, want %s" % (region, shares, want_shares))
        print("  %s: inboxes alex %d, kate %d, moebi %d entries; shares %s" % (
            region, len(inbox["alex"]), len(inbox["kate"]), len(inbox["moebi"]),
            ", ".join("%s=%d" % kv for kv in sorted(shares.items()))))


# --- the scenario and what follows it: events published, effects polled ------------------------
# Every effect below is a Lambda bootstrap's, run by the emulator; this file only publishes and
# reads. A wait polls until its probe holds or its deadline passes (no fixed sleeps).

DEADLINE = 45  # seconds: a cold start of each function, a cross-region hop, a retry after 18 s


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def put(url, region, kind, detail):
    """One PutEvents on the region's `moebi` bus, as the moebi CLI publishes (bus.rs)."""
    entries = json.dumps([{"EventBusName": BUS, "Source": "moebi", "DetailType": kind, "Detail": json.dumps(detail)}])
    got = aws(url, region, "events", "put-events", "--entries", entries)
    if got is None or got.get("FailedEntryCount"):
        fail("%s: PutEvents %s %s: %s" % (region, kind, detail, got))
    return detail


class Abort(Exception):
    """A wait that ran out: the checks after it would only wait out their deadlines too."""


def until(what, probe, deadline=DEADLINE):
    """Polls probe() (answers (done, shown)) until done; answers the seconds it took. At the
    deadline: a failure, and the command stops (Abort)."""
    start = time.time()
    while True:
        done, shown = probe()
        if done:
            return time.time() - start
        if time.time() - start > deadline:
            fail("%s: not within %d s (last seen: %s)" % (what, deadline, shown))
            raise Abort()
        time.sleep(0.25)


def entries(url, region, who):
    return [{"id": i["id"]["S"], "from": i["from"]["S"], "text": i["text"]["S"], "in_reply_to": i.get("in_reply_to", {}).get("S")}
            for i in query(url, region, "inbox#" + who)]


def stock_of(url, region):
    """The stock a region's table holds: the ledger's adds (one item per add, keyed by its event
    id) summed per product and region that applied them, as `<product>#<region>`."""
    held = {}
    for i in query(url, region, "stock"):
        key = "%s#%s" % (i["product"]["S"], i["region"]["S"])
        held[key] = held.get(key, 0) + int(i["qty"]["N"])
    return held


shares = stock_of


def homes_of(topology_file):
    t = json.load(open(topology_file))
    return {x["name"]: x["home"] for x in t["participants"] + t.get("bots", []) + t["stores"]}


def dead_letters(url, regions):
    dead = {}
    for region in regions:
        for q in (aws(url, region, "sqs", "list-queues", "--queue-name-prefix", "moebi") or {}).get("QueueUrls", []):
            if q.endswith("-dlq"):
                a = (aws(url, region, "sqs", "get-queue-attributes", "--queue-url", q, "--attribute-names", "All") or {}).get("Attributes", {})
                n = int(a.get("ApproximateNumberOfMessages", 0)) + int(a.get("ApproximateNumberOfMessagesNotVisible", 0))
                if n:
                    dead["%s %s" % (region, q.rsplit("/", 1)[1])] = n
    return dead


def log_lines(url, region, function, pattern=None):
    """Every message of /aws/lambda/moebi-<function> in region (the CLI pages through them)."""
    args = ["logs", "filter-log-events", "--log-group-name", "/aws/lambda/moebi-" + function]
    if pattern:
        args += ["--filter-pattern", pattern]
    return [(e.get("logStreamName"), e["message"].rstrip("\n")) for e in (aws(url, region, *args) or {}).get("events", [])]


def json_lines(lines):
    out = []
    for stream, m in lines:
        try:
            v = json.loads(m)
        except ValueError:
            continue
        if isinstance(v, dict):
            out.append((stream, v))
    return out


def spans_of(line):
    return {k: v for s in line.get("spans", []) for k, v in s.items()}


def handled_lines(url, region, function, event_id):
    """The bootstrap's `handled` log lines of event_id, with their outcome."""
    return [l for _, l in json_lines(log_lines(url, region, function, '"%s"' % event_id))
            if spans_of(l).get("event_id") == event_id and l.get("fields", {}).get("message") == "handled"]


def twice(url, ids_file):
    ids = json.load(open(ids_file))
    before = {(r, w): entries(url, r, w) for r, w in (("us-east-1", "kate"), ("us-west-2", "alex"), ("eu-west-1", "moebi"))}
    stock_before = shares(url, "us-west-2")
    again = (("hi-kate", "us-west-2", "chat.send", "us-east-1", "chat-send"),
             ("nike-30", "us-west-2", "stock.add", "us-west-2", "stock-add"),
             ("hi-moebi", "us-west-2", "chat.send", "eu-west-1", "moebi-reply"))
    for key, region, kind, where, function in again:
        detail = ids[key]
        put(url, region, kind, detail)
        want = lambda: [l for l in handled_lines(url, where, function, detail["id"]) if "Duplicate" in str(l["fields"].get("outcome"))]
        took = until("%s handling %s again (a Duplicate outcome in its log)" % (function, detail["id"]), lambda: (bool(want()), None))
        if took is not None:
            print("  %-12s published again in %s: moebi-%s (%s) logged outcome %s after %.1f s" % (
                detail["id"], region, function, where, want()[0]["fields"]["outcome"], took))
    # Moebi's answer to the duplicate is the same derived id: chat-send in us-west-2 sees it again.
    reply_id = ids["chicken"]["id"]
    until("chat-send handling Moebi's repeated answer %s as a Duplicate" % reply_id,
          lambda: (any("Duplicate" in str(l["fields"].get("outcome")) for l in handled_lines(url, "us-west-2", "chat-send", reply_id)), None))
    for (r, w), es in before.items():
        after = entries(url, r, w)
        if after != es:
            fail("%s's inbox changed: %s, was %s" % (w, after, es))
        else:
            print("  %s's inbox (%s): unchanged, %d entries" % (w, r, len(after)))
    if shares(url, "us-west-2") != stock_before:
        fail("stock shares changed: %s, were %s" % (shares(url, "us-west-2"), stock_before))
    else:
        print("  stock shares unchanged: %s" % stock_before)


def bad(url, ids_file):
    ids = json.load(open(ids_file))
    # An SQS-fed function: an empty text is refused; the record fails (partial batch response),
    # comes back after the visibility timeout, and after max_receive_count receives SQS moves it
    # to moebi-chat-send-dlq. SQS keeps no reason: the function records it (failure#<message id>).
    empty = put(url, "us-east-1", "chat.send", {"id": "rehearsal-bad-empty", "from": "kate", "to": "kate", "text": "", "sent_at": now()})
    # An EventBridge-invoked function: a product that is not one; Lambda tries 1 + 2 times, then
    # the on-failure destination moebi-stock-status-dlq gets the event and the function's error.
    badp = put(url, "us-east-1", "stock.status", {"id": "rehearsal-bad-product", "asker": "kate", "product": ""})
    got = {}

    def dlq(name, needle):
        q = "%s/000000000000/%s" % (url, name)
        for m in (aws(url, "us-east-1", "sqs", "receive-message", "--queue-url", q, "--max-number-of-messages", "10",
                      "--attribute-names", "All", "--visibility-timeout", "0") or {}).get("Messages", []):
            if needle in m["Body"]:
                got[name] = m
                return True, m
        return False, None

    took = until("the bad chat.send in us-east-1's moebi-chat-send-dlq", lambda: dlq("moebi-chat-send-dlq", empty["id"]), deadline=90)
    if took is not None:
        m = got["moebi-chat-send-dlq"]
        rec = aws(url, "us-east-1", "dynamodb", "get-item", "--table-name", TABLE, "--key",
                  json.dumps({"pk": {"S": "failure#" + m["MessageId"]}, "sk": {"S": "failure"}})) or {}
        reason = rec.get("Item", {}).get("reason", {}).get("S", "")
        count = m.get("Attributes", {}).get("ApproximateReceiveCount")
        if "text" not in reason:
            fail("the failure record of dead letter %s names no field `text`: %r" % (m["MessageId"], rec))
        print("  moebi-chat-send-dlq after %.1f s: %s (receive count %s); failure#%s: %s" % (took, empty["id"], count, m["MessageId"], reason))
    took = until("the bad stock.status in us-east-1's moebi-stock-status-dlq (on-failure destination)",
                 lambda: dlq("moebi-stock-status-dlq", badp["id"]))
    if took is not None:
        body = json.loads(got["moebi-stock-status-dlq"]["Body"])
        ctx, err = body.get("requestContext", {}), body.get("responsePayload") or {}
        if "product" not in json.dumps(err) or ctx.get("condition") != "RetriesExhausted":
            fail("the on-failure record names no field `product`, or not after retries: %s" % body)
        print("  moebi-stock-status-dlq after %.1f s: %s, %s after %s invocations: %s: %s" % (
            took, badp["id"], ctx.get("condition"), ctx.get("approximateInvokeCount"), err.get("errorType"), err.get("errorMessage")))


# --- the front door: users, the scenario through the HTTP APIs, what it refuses ----------------
# People and stores never touch a bus here: they sign in to the user pool and call their home
# region's HTTP API with the moebi CLI (`moebi login`, `moebi --engine api ...`), whose JWT
# authorizer MiniStack checks against the pool's keys; the front door publishes.


def outputs(path):
    return {k: v["value"] for k, v in json.load(open(path)).items()}


def api_url(url, endpoint):
    """Where MiniStack serves an HTTP API: it reports `api_endpoint` as
    http://<api id>.execute-api.localhost:PORT and answers at URL/_aws/execute-api/<api id>/<path>
    (no stage segment for `$default`)."""
    return "%s/_aws/execute-api/%s" % (url, urllib.parse.urlparse(endpoint).hostname.split(".")[0])


def new_password():
    """A random password the pool's policy admits (12+ characters, upper, lower, digit), with a
    symbol too: MiniStack reads a password policy without `RequireSymbols` (the AWS provider
    omits `require_symbols = false`) as requiring one, where AWS reads it as false. The symbols
    are ones a shell, a URL and the AWS CLI's shorthand take as they are."""
    alphabet = string.ascii_letters + string.digits + "-_."
    while True:
        p = "".join(secrets.choice(alphabet) for _ in range(24))
        # Never a leading '-': the AWS CLI would read `--password -x…` as another option (its
        # argparse exits the whole check, silently: seen once in a few runs).
        if p[0].isalnum() and all(any(c in chars for c in p) for chars in (string.ascii_lowercase, string.ascii_uppercase, string.digits, "-_.")):
            return p


def claims_of(token):
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def moebi(front, *args, password=None):
    """Runs the moebi CLI with the rehearsal's sessions; answers its standard output (None if it
    failed, and a failure naming the command)."""
    argv = [front["moebi"], "--state", front["cli_state"], "--sessions", front["sessions"], *args]
    env = dict(os.environ)
    env.pop("MOEBI_PASSWORD", None)
    if password is not None:
        env["MOEBI_PASSWORD"] = password
    r = subprocess.run(argv, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=90)
    if r.returncode:
        fail("%s: exit %d: %s" % (" ".join(shlex.quote(a) for a in argv), r.returncode, (r.stderr or r.stdout).strip()))
        return None
    return r.stdout


def users(url, topology_file, outputs_file, moebi_bin, sessions, front_file):
    o = outputs(outputs_file)
    t = json.load(open(topology_file))
    pool, client = o["user_pool_id"], o["user_pool_client_id"]
    region = t["regions"][0]  # the primary region holds the pool
    apis = {r: api_url(url, e) for r, e in o["api_endpoints"].items()}
    front = {"ministack": url, "region": region, "cognito_url": url, "user_pool_id": pool, "client_id": client,
             "jwt_issuer": o["jwt_issuer"], "apis": apis, "api_endpoints": o["api_endpoints"], "moebi": moebi_bin,
             "sessions": sessions, "cli_state": os.path.join(os.path.dirname(sessions), "cli-state"), "users": {}}
    print("  user pool %s (%s), app client %s, groups %s; issuer %s" % (pool, region, client, ", ".join(o["user_groups"]), o["jwt_issuer"]))
    for r in t["regions"]:
        api_id = apis[r].rsplit("/", 1)[1]
        routes = (aws(url, r, "apigatewayv2", "get-routes", "--api-id", api_id) or {}).get("Items", [])
        # MiniStack's CreateRoute takes a route key it already holds (AWS answers 409), so an SDK
        # retry of a slow CreateRoute leaves the same route twice: seen once in a dozen applies,
        # Terraform having created it once. Identical copies are named and counted once.
        seen, unique = set(), []
        for x in routes:
            key = (x["RouteKey"], x.get("AuthorizationType"), x.get("AuthorizerId"), x.get("Target"))
            if key in seen:
                print("  note: MiniStack holds route %r of %s twice (its CreateRoute does not refuse a key it holds)" % (x["RouteKey"], api_id))
                continue
            seen.add(key)
            unique.append(x)
        routes = unique
        auths = {a["AuthorizerId"]: a for a in (aws(url, r, "apigatewayv2", "get-authorizers", "--api-id", api_id) or {}).get("Items", [])}
        jwt = [x for x in routes if x.get("AuthorizationType") == "JWT" and x.get("AuthorizerId") in auths]
        conf = next(iter(auths.values()), {}).get("JwtConfiguration", {})
        public = sorted(x["RouteKey"] for x in routes if x.get("AuthorizationType", "NONE") == "NONE")
        if len(routes) != 6 or len(jwt) != 4 or public != ["GET /", "GET /config.json"] or conf.get("Issuer") != o["jwt_issuer"] or conf.get("Audience") != [client]:
            fail("%s: HTTP API %s: routes %s, authorizer %s (want 4 routes, each with the JWT authorizer of issuer %s, audience %s, and the page's GET / and GET /config.json)"
                 % (r, api_id, [(x["RouteKey"], x.get("AuthorizationType")) for x in routes], conf, o["jwt_issuer"], client))
        print("  %s: HTTP API %s: %s, each with the JWT authorizer (audience %s), and without a token %s; at %s"
              % (r, api_id, ", ".join(sorted(x["RouteKey"] for x in jwt)), ",".join(conf.get("Audience", [])), ", ".join(public), apis[r]))
    people = [(p["name"], p["home"], "participants") for p in t["participants"]] + [(s["name"], s["home"], "stores") for s in t["stores"]]
    start = time.time()
    for name, home, group in people:
        password = new_password()
        cognito = lambda *args: aws(url, region, "cognito-idp", *args, "--user-pool-id", pool, "--username", name)
        cognito("admin-create-user", "--message-action", "SUPPRESS")
        cognito("admin-set-user-password", "--password=" + password, "--permanent")
        cognito("admin-add-user-to-group", "--group-name", group)
        # The other regions' APIs, the home's standby (the next region) first: where moebi's
        # client turns when the home region cannot be reached (make drill).
        regions = t["regions"]
        at = regions.index(home)
        failover = [apis[regions[(at + k) % len(regions)]] for k in range(1, len(regions))]
        front["users"][name] = {"password": password, "group": group, "home": home, "api": apis[home], "failover": failover}
    for group in ("participants", "stores"):
        got = sorted(u["Username"] for u in (aws(url, region, "cognito-idp", "list-users-in-group", "--user-pool-id", pool, "--group-name", group) or {}).get("Users", []))
        want = sorted(n for n, _, g in people if g == group)
        if got != want:
            fail("group %s holds %s, want %s" % (group, got, want))
        print("  group %-12s %s (admin-create-user --message-action SUPPRESS, admin-set-user-password --permanent: a random password each, admin-add-user-to-group)"
              % (group, ", ".join(got)))
    print("  %d users made in %.1f s" % (len(people), time.time() - start))
    for name, home, group in people:
        u = front["users"][name]
        took = time.time()
        failover = [a for api in u["failover"] for a in ("--failover", api)]
        out = moebi(front, "login", name, "--api", u["api"], *failover, "--client-id", client, "--cognito-url", url, password=u["password"])
        took = time.time() - took
        if out is None:
            continue
        session = json.load(open(os.path.join(sessions, name + ".json")))
        c = claims_of(session["access_token"])
        if c.get("username") != name or group not in str(c.get("cognito:groups")) or c.get("client_id") != client or session["api"] != u["api"]:
            fail("%s's session: api %s, access token claims %s" % (name, session["api"], c))
        print("  moebi login %-8s -> %s's API; access token: username %s, cognito:groups %s, client_id %s, valid %d s (%.1f s)"
              % (name, home, c.get("username"), c.get("cognito:groups"), c.get("client_id"), int(c["exp"]) - int(c["iat"]), took))
    with open(front_file, "w") as f:
        os.chmod(front_file, 0o600)
        json.dump(front, f, indent=2)


def api_inbox(front, who):
    out = moebi(front, "--engine", "api", "inbox", who, "--json")
    return [json.loads(l) for l in (out or "").splitlines() if l.strip()]


def inbox_item(url, region, who, msg_id):
    """The inbox entry as stored (its `sent_at` exactly as the front door stamped it)."""
    for i in query(url, region, "inbox#" + who):
        if i["id"]["S"] == msg_id:
            return {k: v["S"] for k, v in i.items() if "S" in v}
    return None


def front_scenario(url, topology_file, front_file, ids_file):
    front = json.load(open(front_file))
    home = homes_of(topology_file)
    ids = {}

    def cli(*args):
        start = time.time()
        out = moebi(front, "--engine", "api", *args)
        if out is None:
            raise Abort()
        return out.strip(), time.time() - start

    def chat(key, sender, to, text):
        out, took = cli("send", sender, to, text)  # "sent <id>"
        msg_id = out.split()[-1]
        ids[key] = {"id": msg_id, "from": sender, "to": to, "text": text}
        return msg_id, took

    def landed_in(key, who, line, via_api=True):
        msg_id = ids[key]["id"]
        read = (lambda: api_inbox(front, who)) if via_api else (lambda: entries(url, home[who], who))
        took = until("%s's inbox (%s) holding %s" % (who, home[who], msg_id), lambda: (lambda es: (any(e["id"] == msg_id for e in es), es))(read()))
        stored = inbox_item(url, home[who], who, msg_id) or {}
        ids[key]["sent_at"] = stored.get("sent_at")  # stamped by the front door
        print("  %-66s %.1f s" % (line, took))

    _, took = chat("hi-kate", "alex", "kate", "hi")
    print("  moebi --engine api send alex kate hi: POST /messages at us-west-2's API, 202 in %.2f s" % took)
    landed_in("hi-kate", "kate", "1. alex -> kate: us-west-2 -> us-east-1; kate reads it (GET /inbox at us-east-1)")
    chat("how-are-you", "kate", "alex", "how are you?")
    landed_in("how-are-you", "alex", "2. kate -> alex: us-east-1 -> us-west-2; alex reads it (GET /inbox at us-west-2)")
    chat("hi-moebi", "alex", "moebi", "hi")
    landed_in("hi-moebi", "moebi", "3. alex -> moebi: -> eu-west-1, moebi-reply, moebi's inbox (aws dynamodb)", via_api=False)
    reply = lambda es: [e for e in es if e.get("in_reply_to") == ids["hi-moebi"]["id"]]
    took = until("Moebi's answer in alex's inbox (GET /inbox)", lambda: (lambda es: (bool(reply(es)), es))(api_inbox(front, "alex")))
    (r,) = reply(api_inbox(front, "alex")) or [None]
    if not r or r["from"] != "moebi" or r["text"] != "chicken?":
        fail("Moebi's answer in alex's inbox: %s, want `chicken?` from moebi" % r)
    print("  %-66s %.1f s: %s: %s (%s, in reply to %s)" % ("   moebi answers: eu-west-1 -> us-west-2; alex reads it (GET /inbox)", took,
                                                          r["from"], r["text"], r["id"], r.get("in_reply_to")))
    ids["chicken"] = {"id": r["id"], "from": r["from"], "text": r["text"], "in_reply_to": r.get("in_reply_to")}
    kate = api_inbox(front, "kate")
    if [e["from"] for e in kate] != ["alex"]:
        fail("kate's inbox (GET /inbox) holds %s, want only alex's hi (nothing from moebi)" % kate)

    def add(key, store, product, qty):
        out, took = cli("stock", "add", store, product, str(qty))  # "added 30 nike from store-1 (<id>)"
        ids[key] = {"id": out.rsplit("(", 1)[1].rstrip(")"), "store": store, "product": product, "qty": qty}
        return took

    took = [add("nike-30", "store-1", "nike", 30), add("adidas-35", "store-3", "adidas", 35), add("nike-5", "store-3", "nike", 5)]
    print("  moebi --engine api stock add: store-1 at us-west-2's API, store-3 at eu-west-1's (POST /stock, 202 in %s s)"
          % ", ".join("%.2f" % t for t in took))
    want = {"nike#us-west-2": 30, "adidas#eu-west-1": 35, "nike#eu-west-1": 5}
    took = until("stock shares as read in us-east-1 (global table replica)", lambda: (lambda s: (s == want, s))(shares(url, "us-east-1")))
    print("  %-66s %.1f s: %s" % ("4. stock adds in us-west-2 and eu-west-1, read in us-east-1", took, ", ".join("%s=%d" % kv for kv in sorted(want.items()))))
    for product, text in (("nike", "nike: 35"), ("puma", "there is no product puma"), (None, "adidas: 35, nike: 35")):
        # Asks (POST /stock/status at us-east-1) and looks for the answer in kate's inbox (GET /inbox).
        got, took = cli("stock", "status", *([product] if product else []), "--as", "kate")
        if got != text:
            fail("moebi --engine api stock status %s --as kate: %r, want %r" % (product or "", got, text))
        print("  %-66s %.1f s: %s" % ("5. kate asks %s: moebi --engine api stock status" % (product or "everything"), took, got))
    answers = [e for e in api_inbox(front, "kate") if e["from"] == "stock"]
    if len(answers) != 3 or any(not e.get("in_reply_to") for e in answers):
        fail("kate's inbox holds %d answers of the stock, each in reply to her question: %s" % (len(answers), answers))
    chat_session(front)
    dead = dead_letters(url, json.load(open(topology_file))["regions"])
    if dead:
        fail("dead letters after the scenario: %s" % dead)
    else:
        print("  no dead letters (every moebi-*-dlq of every region empty)")
    json.dump(ids, open(ids_file, "w"), indent=2)


def chat_session(front):
    """`moebi --engine api chat alex`, typed into: alex asks the stock; the answer shows as it
    lands in his inbox (the stock's answers are not among the chat messages `landed` counts)."""
    argv = [front["moebi"], "--state", front["cli_state"], "--sessions", front["sessions"], "--engine", "api", "chat", "alex", "--every-ms", "200"]
    start = time.time()
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
    lines = []

    def read():
        for line in p.stdout:
            lines.append(line)
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    p.stdin.write("/stock adidas\n")
    p.stdin.flush()
    answer = lambda: [l.rstrip("\n") for l in list(lines) if l.startswith("← stock: adidas")]
    try:
        took = until("the stock's answer shown in alex's chat session (%s)" % " ".join(argv[-5:]), lambda: (bool(answer()), list(lines)), deadline=30)
    finally:
        try:
            p.stdin.write("/quit\n")
            p.stdin.flush()
            p.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            p.kill()
        reader.join(timeout=5)
    if p.returncode != 0:
        fail("moebi --engine api chat alex: exit %s: %s" % (p.returncode, p.stderr.read().strip()))
    if answer()[0].split("  (reply to")[0] != "← stock: adidas: 35":
        fail("alex's chat session showed %r, want the stock's `adidas: 35`" % answer()[0])
    print("  %-66s %.1f s: %s" % ("6. alex types `/stock adidas` in moebi --engine api chat alex", took, answer()[0]))
    print("     (the session: %d lines, left with /quit after %.1f s)" % (len(lines), time.time() - start))


def table(url, region):
    """Every item of the region's table, each as sorted JSON."""
    items = (aws(url, region, "dynamodb", "scan", "--table-name", TABLE) or {}).get("Items", [])
    return sorted(json.dumps(i, sort_keys=True) for i in items)


def tables(url, regions):
    """Every region's table, once two reads a moment apart agree (replication settled)."""
    last = None
    for _ in range(20):
        now_ = {r: table(url, r) for r in regions}
        if now_ == last:
            return now_
        last = now_
        time.sleep(0.5)
    return last


def http(api, method, path, token=None, body=None, raw=None):
    """One call of an HTTP API; answers (status, body as JSON or text)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(api + path, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def refusals(url, topology_file, front_file, state_dir, resign, ids_file):
    front, ids = json.load(open(front_file)), json.load(open(ids_file))
    regions = regions_of(topology_file)
    pool, region = front["user_pool_id"], front["region"]
    sessions = {u: json.load(open(os.path.join(front["sessions"], u + ".json"))) for u in front["users"]}
    token = lambda u: sessions[u]["access_token"]
    api = lambda u: front["users"][u]["api"]
    before = tables(url, regions)
    print("  before: %s items in the tables (inboxes, shares, request#, applied# records), scanned with aws dynamodb scan"
          % ", ".join("%s %d" % (r, len(before[r])) for r in regions))

    refused = iter(range(1, 100))

    def expect(label, want, who_api, method, path, tok, body=None, raw=None, field=None):
        if isinstance(body, dict) and "id" not in body and method == "POST":
            body = dict(body, id="rehearsal-refused-%d" % next(refused))
        status, answer = http(who_api, method, path, tok, body, raw)
        shown = answer if isinstance(answer, str) else json.dumps(answer)
        if isinstance(answer, dict) and "entries" in answer:
            shown = "(%s: %d entries)" % (answer.get("participant"), len(answer["entries"]))
        print("  %-62s %d %s" % (label, status, shown[:160]))
        if status != want:
            fail("%s: %d %s, want %d" % (label, status, shown[:300], want))
        elif field and (not isinstance(answer, dict) or answer.get("field") != field):
            fail("%s: the refusal names field %s, want %s" % (label, answer.get("field") if isinstance(answer, dict) else None, field))
        return status, answer

    def resigned(tok, changes):
        key = os.path.join(state_dir, "cognito-pool-keys", pool + "-access.pem")
        r = subprocess.run([*resign, key, json.dumps(changes)], input=tok, capture_output=True, text=True)
        if r.returncode:
            fail("jwt-resign: %s" % r.stderr.strip())
            raise Abort()
        return r.stdout.strip()

    now_s = int(time.time())
    alex = token("alex")
    c = claims_of(alex)
    # The same claims signed again with the pool's access key (from MiniStack's STATE_DIR): taken.
    expect("alex's claims signed again with the pool's key: GET /inbox", 200, api("alex"), "GET", "/inbox", resigned(alex, {}))
    msg = {"to": "kate", "text": "refused"}
    expect("no token: POST /messages", 401, api("alex"), "POST", "/messages", None, msg)
    expired = resigned(alex, {"iat": now_s - 7200, "auth_time": now_s - 7200, "exp": now_s - 3600})
    expect("expired (exp 1 h ago, signed with the pool's key)", 401, api("alex"), "POST", "/messages", expired, msg)
    h, p, s = alex.split(".")
    forged = dict(c, username="kate")
    tampered = h + "." + base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode() + "." + s
    expect("tampered (username kate, alex's signature)", 401, api("alex"), "POST", "/messages", tampered, {"to": "alex", "text": "refused"})
    other = aws(url, region, "cognito-idp", "create-user-pool-client", "--user-pool-id", pool, "--client-name", "moebi-rehearsal-other",
                "--explicit-auth-flows", "ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH") or {}
    other_id = other.get("UserPoolClient", {}).get("ClientId")
    auth = aws(url, region, "cognito-idp", "initiate-auth", "--client-id", str(other_id), "--auth-flow", "USER_PASSWORD_AUTH",
               "--auth-parameters", json.dumps({"USERNAME": "alex", "PASSWORD": front["users"]["alex"]["password"]})) or {}
    foreign = auth.get("AuthenticationResult", {}).get("AccessToken", "")
    if claims_of(foreign or "x.e30.x").get("client_id") != other_id:
        fail("a token of the second app client %s: %s" % (other_id, auth))
    print("  a second app client %s in the pool (create-user-pool-client); alex signed in with it (initiate-auth)" % other_id)
    expect("alex's token of the second app client", 401, api("alex"), "POST", "/messages", foreign, msg)
    expect("alex sending as kate (body from: kate)", 403, api("alex"), "POST", "/messages", alex, {"from": "kate", "to": "alex", "text": "refused"})
    expect("alex (a participant) adding stock", 403, api("alex"), "POST", "/stock", alex, {"product": "nike", "qty": 1})
    expect("store-1 (a store) sending a message", 403, api("store-1"), "POST", "/messages", token("store-1"), msg)
    expect("store-1 adding qty 0", 400, api("store-1"), "POST", "/stock", token("store-1"), {"product": "nike", "qty": 0}, field="qty")
    big = json.dumps({"id": "rehearsal-refused-big", "to": "kate", "text": "x" * (70 * 1024)}).encode()
    expect("a body of %d KiB (limit 64)" % (len(big) // 1024), 413, api("alex"), "POST", "/messages", alex, raw=big)
    how, adidas = ids["how-are-you"], ids["adidas-35"]
    print("  ids reused: kate's %s (how are you?), store-3's %s (adidas 35)" % (how["id"], adidas["id"]))
    expect("kate reusing her id for another text", 409, api("kate"), "POST", "/messages", token("kate"),
           {"id": how["id"], "to": "alex", "text": "something else"})
    expect("store-3 reusing its id for another qty", 409, api("store-3"), "POST", "/stock", token("store-3"),
           {"id": adidas["id"], "product": "adidas", "qty": 36})
    # Retries of the same requests: answered 202 again and published again; every effect
    # downstream is once per id, so the handlers log Duplicate and nothing is doubled.
    retries = ((how["id"], "kate's retry (same id, to, text)", api("kate"), "/messages", token("kate"),
                {"id": how["id"], "to": "alex", "text": how["text"]}, "us-west-2", "chat-send"),
               (adidas["id"], "store-3's retry (same id, product, qty)", api("store-3"), "/stock", token("store-3"),
                {"id": adidas["id"], "product": "adidas", "qty": 35}, "eu-west-1", "stock-add"))
    dups = {i: len([l for l in handled_lines(url, where, fn, i) if "Duplicate" in str(l["fields"].get("outcome"))]) for i, *_, where, fn in retries}
    for event_id, label, where_api, path, tok, body, where, fn in retries:
        status, answer = expect(label, 202, where_api, "POST", path, tok, body)
        if status == 202 and answer != {"id": event_id}:
            fail("%s: answered %s, want {\"id\": %s}" % (label, answer, event_id))
    for event_id, label, *_, where, fn in retries:
        again = lambda: [l for l in handled_lines(url, where, fn, event_id) if "Duplicate" in str(l["fields"].get("outcome"))]
        took = until("moebi-%s (%s) handling the retried %s as a Duplicate" % (fn, where, event_id), lambda: (len(again()) > dups[event_id], None))
        print("  the retry of %s: moebi-%s (%s) handled it again after %.1f s: outcome %s"
              % (event_id, fn, where, took, again()[-1]["fields"]["outcome"]))
    after = tables(url, regions)
    for r in regions:
        gone, new = sorted(set(before[r]) - set(after[r])), sorted(set(after[r]) - set(before[r]))
        if gone or new:
            fail("%s: the table changed: %d item(s) new %s, %d gone %s" % (r, len(new), new[:3], len(gone), gone[:3]))
    refused_ids = [i for r in regions for i in after[r] if "rehearsal-refused" in i]
    if refused_ids:
        fail("items of refused requests: %s" % refused_ids[:3])
    requests = {r: sum('"request#' in i for i in after[r]) for r in regions}
    print("  after: every region's table as before (%s items; request# records %s); no item names a refused request"
          % (", ".join("%s %d" % (r, len(after[r])) for r in regions), ", ".join("%s %d" % kv for kv in requests.items())))
    seen = [l for _, l in json_lines(log_lines(url, "us-west-2", "front-door") + log_lines(url, "us-east-1", "front-door")
                                     + log_lines(url, "eu-west-1", "front-door")) if l.get("fields", {}).get("message") == "refused"]
    kinds = {}
    for l in seen:
        k = "%s %s" % (l["fields"].get("status"), l["fields"].get("error_type"))
        kinds[k] = kinds.get(k, 0) + 1
    print("  the front doors' `refused` log lines: %s (a 401 never reaches the function: API Gateway answers it)"
          % (", ".join("%s x%d" % kv for kv in sorted(kinds.items())) or "none"))


FUNCTIONS = ("chat-send", "moebi-reply", "stock-add", "stock-status")
REGIONS = ("us-west-2", "us-east-1", "eu-west-1")


def logs(url, ids_file, out_dir, emf_check):
    ids = json.load(open(ids_file))
    os.makedirs(out_dir, exist_ok=True)
    for f in FUNCTIONS:
        lines = [m for r in REGIONS for _, m in log_lines(url, r, f)]
        path = os.path.join(out_dir, f + ".log")
        with open(path, "w") as out:
            out.write("\n".join(lines) + "\n")
        r = subprocess.run([sys.executable, emf_check, f, path], capture_output=True, text=True)
        if r.returncode:
            fail("emf-check %s (all regions' /aws/lambda/moebi-%s): %s" % (f, f, (r.stdout + r.stderr).strip()))
        else:
            print("  " + r.stdout.strip())
    # One event followed: alex's hi to moebi, from its handling in eu-west-1 to the answer's in us-west-2.
    follow = ((ids["hi-moebi"]["id"], "eu-west-1", "moebi-reply"), (ids["chicken"]["id"], "us-west-2", "chat-send"),
              (ids["hi-kate"]["id"], "us-east-1", "chat-send"))
    for event_id, region, f in follow:
        lines = json_lines(log_lines(url, region, f))
        mine = [(s, l) for s, l in lines if spans_of(l).get("event_id") == event_id]
        if not mine:
            fail("%s: /aws/lambda/moebi-%s has no log line of event %s" % (region, f, event_id))
            continue
        stream, first = mine[0]
        request = spans_of(first).get("request_id")
        emf = [l for s, l in lines if "_aws" in l and l.get("RequestId") == request]
        report = [m for s, m in log_lines(url, region, f) if m.startswith("REPORT RequestId: %s" % request)]
        if not request or not emf or not report:
            fail("%s: event %s: request %s, %d EMF documents, %d REPORT lines in /aws/lambda/moebi-%s" % (region, event_id, request, len(emf), len(report), f))
            continue
        metrics = {m["Name"]: emf[0].get(m["Name"]) for m in emf[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
        print("  %s /aws/lambda/moebi-%s, event %s: %s; request %s (trace %s); EMF %s; %s" % (
            region, f, event_id, ", ".join(l.get("fields", {}).get("message", "?") for _, l in mine), request,
            (spans_of(first).get("trace_id") or "none")[:40], metrics, report[0].split("\t")[1:3]))


def bootstraps(code_dir, function, region):
    """Pids of the function's bootstrap processes in region: their executable lies under
    MiniStack's code directory, their environment names the function and region."""
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            exe = os.readlink("/proc/%s/exe" % pid)
            env = dict(kv.split("=", 1) for kv in open("/proc/%s/environ" % pid, "rb").read().decode(errors="replace").split("\0") if "=" in kv)
        except OSError:
            continue
        if exe.startswith(code_dir + "/") and env.get("AWS_LAMBDA_FUNCTION_NAME") == "moebi-" + function and env.get("AWS_REGION") == region:
            pids.append(int(pid))
    return pids


def visibility(url, region, queue):
    return (aws(url, region, "sqs", "get-queue-attributes", "--queue-url", queue, "--attribute-names", "VisibilityTimeout") or {}).get("Attributes", {}).get("VisibilityTimeout")


def kill(url, code_dir, ids_file):
    region, function = "us-east-1", "chat-send"
    queue = "%s/000000000000/moebi-%s" % (url, function)
    fn = "moebi-" + function
    reserved = (aws(url, region, "lambda", "get-function-concurrency", "--function-name", fn) or {}).get("ReservedConcurrentExecutions")
    # One batch at a time, so that the batch goes to the process about to be killed (the mapping
    # runs min(MaximumConcurrency, reserved concurrency) batches at once); restored below.
    aws(url, region, "lambda", "put-function-concurrency", "--function-name", fn, "--reserved-concurrent-executions", "1")
    try:
        pids = bootstraps(code_dir, function, region)
        if not pids:
            fail("no %s bootstrap process of %s under %s" % (function, region, code_dir))
            return
        for p in pids:
            os.kill(p, signal.SIGSTOP)
        before = entries(url, region, "kate")
        run = "rehearsal-kill-%d-" % time.time()
        sent = [{"id": run + str(i), "from": "alex", "to": "kate", "text": "kill %d" % i, "sent_at": now()} for i in range(5)]
        entries_json = json.dumps([{"EventBusName": BUS, "Source": "moebi", "DetailType": "chat.send", "Detail": json.dumps(d)} for d in sent])
        aws(url, "us-west-2", "events", "put-events", "--entries", entries_json)
        inflight = {}

        def handed():
            a = (aws(url, region, "sqs", "get-queue-attributes", "--queue-url", queue, "--attribute-names", "All") or {}).get("Attributes", {})
            inflight.update(a)
            return int(a.get("ApproximateNumberOfMessagesNotVisible", 0)) > 0, a
        if until("a batch handed to the stopped %s process" % function, handed, deadline=10) is None:
            return
        time.sleep(0.3)  # let the forwarded events still on their way join the queue
        # Killed while it holds the batch, unanswered: deterministic, unlike a kill timed into
        # its writes (a batch takes milliseconds; a kill after some writes is the duplicate case
        # the `twice` step covers). MiniStack answers the invocation Runtime.ExitError, the
        # mapping leaves the batch on the queue, and SQS hands it out again after the visibility
        # timeout, to a new process.
        for p in pids:
            os.kill(p, signal.SIGKILL)
        killed_at = time.time()
        mid = [e for e in entries(url, region, "kate") if e["id"].startswith(run)]
        held = int(inflight.get("ApproximateNumberOfMessagesNotVisible", 0))
        print("  SIGKILL of %s pid(s) %s (exe under %s) holding a batch: %d message(s) in flight; %d of 5 delivered at the kill"
              % (function, pids, code_dir, held, len(mid)))
        want = sorted(d["id"] for d in sent)
        took = until("all 5 messages in kate's inbox, once each, after the retry",
                     lambda: (lambda got: (got == want, got))(sorted(e["id"] for e in entries(url, region, "kate") if e["id"].startswith(run))))
        if took is not None:
            print("  %.1f s after the kill all 5 delivered, each once (the batch retried after the %s s visibility timeout); new %s process(es): %s"
                  % (time.time() - killed_at, visibility(url, region, queue), function, bootstraps(code_dir, function, region)))
            if held and time.time() - killed_at < 0.5 * float(visibility(url, region, queue)):
                fail("the killed batch's messages came back before the visibility timeout: not a retry by the mapping")
        after = [e for e in entries(url, region, "kate") if not e["id"].startswith(run)]
        if after != before:
            fail("kate's other entries changed: %s, were %s" % (after, before))
        a = (aws(url, region, "sqs", "get-queue-attributes", "--queue-url", queue, "--attribute-names", "All") or {}).get("Attributes", {})
        left = int(a.get("ApproximateNumberOfMessages", 0)) + int(a.get("ApproximateNumberOfMessagesNotVisible", 0))
        if left:
            fail("%d message(s) left on moebi-%s" % (left, function))
        dead = {k: v for k, v in dead_letters(url, [region]).items() if "chat-send-dlq" in k}
        if dead.get("us-east-1 moebi-chat-send-dlq", 0) > 1:  # the bad step's empty text is the one
            fail("dead letters in us-east-1: %s" % dead)
    finally:
        if reserved is not None:
            aws(url, region, "lambda", "put-function-concurrency", "--function-name", fn, "--reserved-concurrent-executions", str(reserved))


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[1], argv[2:]
    try:
        return run(cmd, args)
    except Abort:
        print("  (stopped at the first wait that ran out or command that failed: the checks after it need it)", file=sys.stderr)
        return 1


def run(cmd, args):
    if cmd == "wiring" and len(args) == 3:
        wiring(args[0], regions_of(args[1]), json.load(open(args[2])))
    elif cmd == "users" and len(args) == 6:
        users(*args)
    elif cmd in ("scenario", "refusals") and len(args) == (4 if cmd == "scenario" else 6):
        try:
            if cmd == "scenario":
                front_scenario(*args)
            else:
                resign = [args[4], os.path.join(os.path.dirname(os.path.abspath(__file__)), "jwt-resign.py")]
                refusals(args[0], args[1], args[2], args[3], resign, args[5])
        except Abort:
            # What the functions said, for whoever reads the failure (CloudWatch Logs).
            for r in REGIONS:
                for f in FUNCTIONS + ("front-door",):
                    errors = [m for _, m in log_lines(args[0], r, f) if "ERROR" in m or "Runtime." in m]
                    for m in errors[-2:]:
                        print("  %s /aws/lambda/moebi-%s: %s" % (r, f, m[:300]), file=sys.stderr)
            raise
    elif cmd == "twice" and len(args) == 2:
        twice(args[0], args[1])
    elif cmd == "bad" and len(args) == 2:
        bad(args[0], args[1])
    elif cmd == "logs" and len(args) == 4:
        logs(args[0], args[1], args[2], args[3])
    elif cmd == "kill" and len(args) == 3:
        kill(args[0], args[1], args[2])
    elif cmd == "landed" and len(args) == 2:
        landed(args[0], regions_of(args[1]))
    elif cmd == "dump" and len(args) == 3:
        json.dump(dump(args[0], regions_of(args[1])), open(args[2], "w"), indent=2, sort_keys=True)
    elif cmd == "compare" and len(args) == 2:
        compare(json.load(open(args[0])), json.load(open(args[1])))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
