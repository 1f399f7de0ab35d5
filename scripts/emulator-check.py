"""Checks, through the AWS CLI, what is deployed in an AWS API emulator (scripts/deploy-emulator.sh).

Run with the AWS CLI's own Python (.venv/awscli/bin/python): every call is an AWS CLI command,
`aws --endpoint-url URL --region R --output json <service> <operation> ...`, run by the CLI's
driver inside this one process (a new `aws` process per call costs a second of start-up).
A failing check prints the command to repeat it by hand.

  emulator-check.py wiring  URL TOPOLOGY RULES_JSON   rules -> queues / other regions' buses; dashboards
  emulator-check.py landed  URL TOPOLOGY               the scenario's inboxes and shares, every region
  emulator-check.py dump    URL TOPOLOGY OUT_JSON      tables, queues, rules and targets, normalised
  emulator-check.py compare SETUP_JSON TERRAFORM_JSON  what `moebi setup` makes, Terraform makes too

Exit status: 0 when every check holds, 1 otherwise (each failure on stderr), 2 on usage errors.
"""

import contextlib
import io
import json
import shlex
import sys

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
        rc = DRIVER.main(argv)
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
        entry = out.setdefault(region, {"table": None, "bus": None, "queues": {}, "rules": {}})
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
}


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
            if name not in t["queues"]:
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
            if [x["arn"] for x in r["targets"]] != [x["arn"] for x in tr["targets"]]:
                fail("%s: rule %s: targets: setup %s, Terraform %s" % (region, name, r["targets"], tr["targets"]))
            for a, b in zip(r["targets"], tr["targets"]):
                if a["role_arn"] != b["role_arn"]:
                    if bool(a["role_arn"]) != bool(b["role_arn"]):
                        fail("%s: rule %s: target %s: role: setup %s, Terraform %s" % (region, name, a["arn"], a["role_arn"], b["role_arn"]))
                    known.add("role_arn")
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
            if kind in ("queue", "function"):
                # A function's rule targets its stand-in queue on the emulator (emulator_lacks_lambda_invoke).
                want_arn = "arn:aws:sqs:%s:%s:moebi-%s" % (region, account, target)
                ok = arn == want_arn and "moebi-" + target in queues
                what = "queue moebi-%s%s" % (target, " (stand-in of the function)" if kind == "function" else "")
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
        shares = {i["sk"]["S"]: int(i["qty"]["N"]) for i in query(url, region, "stock")}
        want_shares = {"nike#us-west-2": 30, "nike#eu-west-1": 5, "adidas#eu-west-1": 35}
        if shares != want_shares:
            fail("%s: stock shares %s, want %s" % (region, shares, want_shares))
        print("  %s: inboxes alex %d, kate %d, moebi %d entries; shares %s" % (
            region, len(inbox["alex"]), len(inbox["kate"]), len(inbox["moebi"]),
            ", ".join("%s=%d" % kv for kv in sorted(shares.items()))))


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[1], argv[2:]
    if cmd == "wiring" and len(args) == 3:
        wiring(args[0], regions_of(args[1]), json.load(open(args[2])))
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
