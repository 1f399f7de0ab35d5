#!/usr/bin/env bash
# Prints, as one JSON document on stdout, the runtime settings Terraform deploys in each region:
# the DynamoDB table's keys, TTL attribute and stream view; for each SQS-fed function its queue's
# visibility timeout and maxReceiveCount and its event source mapping's batch size and partial
# batch responses; for each EventBridge-invoked function Lambda's asynchronous attempts.
# tests/drift.rs compares it with what `moebi setup` creates in the emulator
# (moebi::engine::settings).
#
#   bash infra/settings.sh [--reached] [TOPOLOGY_JSON]   (default topology: infra/topology.json)
#
# Terraform deploys the four functions, and the queues of chat-send and stock-add, in every
# region, whether or not a rule of that region ever sends them anything. By default every
# deployed queue mapping and async invoke config is listed; with --reached only those of the
# functions some EventBridge rule of the region reaches (through its queue, or directly): the
# ones the emulator and the embedded engine create, which derive them from the rules.
#
# Same offline plan as infra/check.sh: no network, fake credentials, the AWS provider from the
# /opt/tf-plugins filesystem mirror when it exists. Only the JSON goes to stdout; logs go to stderr.
# A value the plan does not know (computed at apply) is an error, never a guess.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INFRA="$ROOT/infra"

usage() {
  echo "usage: bash infra/settings.sh [--reached] [TOPOLOGY_JSON]" >&2
  exit 2
}
TOPOLOGY=""
SCOPE="deployed"
for arg in "$@"; do
  case "$arg" in
    --reached) SCOPE="reached" ;;
    -*) usage ;;
    *)
      [ -z "$TOPOLOGY" ] || usage
      if [ ! -f "$arg" ]; then
        echo "settings.sh: no topology file $arg" >&2
        exit 2
      fi
      # Absolute: Terraform resolves file() paths against infra/ (-chdir), not the caller's directory.
      TOPOLOGY="$(cd "$(dirname "$arg")" && pwd)/$(basename "$arg")"
      ;;
  esac
done

TERRAFORM="${TERRAFORM:-terraform}"
FAKE_ACCOUNT="123456789012"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# A private data directory: this script neither needs nor disturbs infra/.terraform (which
# check.sh and tests/infra.rs use), and runs side by side with them.
export TF_DATA_DIR="$WORK/data"
# shellcheck source=infra/offline.sh
. "$INFRA/offline.sh"
offline_terraform "$WORK"
offline_env

tf() { "$TERRAFORM" -chdir="$INFRA" "$@"; }

run() { # run <log name> <terraform args...>: output to a log, shown on stderr if it fails
  local log="$WORK/$1.log"
  shift
  if ! tf "$@" >"$log" 2>&1; then
    echo "settings.sh: terraform $1 failed:" >&2
    cat "$log" >&2
    exit 1
  fi
}

vars=(-var offline=true -var account_id="$FAKE_ACCOUNT")
if [ -n "$TOPOLOGY" ]; then
  vars+=(-var topology_file="$TOPOLOGY")
fi

echo "settings.sh: terraform init" >&2
run init init -backend=false -input=false -no-color
echo "settings.sh: terraform plan (offline, ${TOPOLOGY:-infra/topology.json})" >&2
run plan plan -refresh=false -lock=false -input=false -no-color "${vars[@]}" -out="$WORK/settings.tfplan"
echo "settings.sh: terraform show -json" >&2
if ! tf show -json "$WORK/settings.tfplan" >"$WORK/plan.json" 2>"$WORK/show.log"; then
  echo "settings.sh: terraform show failed:" >&2
  cat "$WORK/show.log" >&2
  exit 1
fi

python3 - "$WORK/plan.json" "$SCOPE" <<'PY'
import json
import re
import sys

plan = json.load(open(sys.argv[1]))
scope = sys.argv[2]  # "deployed" or "reached"
errors = []


def fail(msg):
    errors.append(msg)


# Module calls of the root module: "region_us_west_2" => "us-west-2", from the constant
# `region = "..."` argument each region module block passes (infra/regions.tf).
calls = plan.get("configuration", {}).get("root_module", {}).get("module_calls", {})
call_region = {}
for name, call in calls.items():
    region = call.get("expressions", {}).get("region", {}).get("constant_value")
    if isinstance(region, str):
        call_region[name] = region


def region_of(module_address):
    """module.region_us_east_1[0] => us-east-1 (None for the root module)."""
    if not module_address:
        return None
    m = re.match(r'^module\.([A-Za-z0-9_-]+)(\[[^\]]*\])?$', module_address)
    if not m:
        fail("unexpected module address %s (nested modules are not expected)" % module_address)
        return None
    call = m.group(1)
    if call in call_region:
        return call_region[call]
    m2 = re.match(r'^region_([a-z0-9_]+)$', call)
    if m2:
        return m2.group(1).replace("_", "-")
    fail("cannot tell the region of %s" % module_address)
    return None


def known(rc, attr):
    """The planned value of a top-level attribute, or an error if it is unknown at plan time."""
    change = rc["change"]
    unknown = change.get("after_unknown") or {}
    if unknown.get(attr) is True:
        fail("%s.%s is unknown until apply" % (rc["address"], attr))
        return None
    return (change.get("after") or {}).get(attr)


def short_name(function_name_or_arn):
    """arn:…:function:moebi-chat-send, moebi-chat-send => chat-send."""
    name = function_name_or_arn.split(":function:")[-1].split(":")[0]
    return name[len("moebi-"):] if name.startswith("moebi-") else name


outputs = plan.get("planned_values", {}).get("outputs", {})
topology_regions = (outputs.get("regions") or {}).get("value")
if not topology_regions:
    fail('output "regions" is missing or unknown in the plan')
    topology_regions = []

changes = [
    rc for rc in plan.get("resource_changes", [])
    if rc.get("mode") == "managed" and "delete" not in rc["change"]["actions"]
]

regions = {}


def region_entry(region):
    return regions.setdefault(region, {})


# --- The table: one resource with replicas (a global table) -----------------------------------
# (Each region's connections table of live delivery, modules/region/live.tf, is not the store.)
tables = [rc for rc in changes if rc["type"] == "aws_dynamodb_table" and rc["name"] != "connections"]
if len(tables) != 1:
    fail("expected exactly one aws_dynamodb_table, found %s" % [t["address"] for t in tables])
for rc in tables:
    ttl = known(rc, "ttl") or []
    ttl_on = [t for t in ttl if t.get("enabled")]
    table = {
        "hash_key": known(rc, "hash_key"),
        "range_key": known(rc, "range_key"),
        "ttl_attribute": ttl_on[0].get("attribute_name") if ttl_on else None,
        "stream_view_type": known(rc, "stream_view_type") if known(rc, "stream_enabled") else None,
    }
    # The table lives in the default provider's region, the primary: the topology's first
    # region (infra/main.tf local.primary_region, infra/providers.tf); replicas elsewhere.
    home = region_of(rc.get("module_address"))
    if home is None and topology_regions:
        home = topology_regions[0]
    replicas = [r.get("region_name") for r in (known(rc, "replica") or [])]
    if home in replicas:
        fail("%s replicates into its own region %s" % (rc["address"], home))
    for region in [home] + replicas:
        if region is not None:
            region_entry(region)["table"] = table

# --- Queues feeding functions: queue settings + event source mapping --------------------------
queues = {}  # (region, queue name) => resource change
for rc in changes:
    if rc["type"] == "aws_sqs_queue":
        name = known(rc, "name")
        if name:
            queues[(region_of(rc.get("module_address")), name)] = rc

for rc in changes:
    if rc["type"] != "aws_lambda_event_source_mapping" or rc["name"] == "push":
        continue  # (push: the inbox stream's mapping, live delivery; not an SQS one)
    region = region_of(rc.get("module_address"))
    source = known(rc, "event_source_arn") or ""
    if ":sqs:" not in source:
        continue  # not an SQS mapping (e.g. a stream): not part of this document
    arn_region, queue_name = source.split(":")[3], source.split(":")[5]
    if arn_region != region:
        fail("%s reads a queue of %s from module region %s" % (rc["address"], arn_region, region))
    queue = queues.get((arn_region, queue_name))
    if queue is None:
        fail("%s reads queue %s, which this plan does not create" % (rc["address"], source))
        continue
    function = short_name(known(rc, "function_name") or "")
    if rc.get("index") not in (None, function):
        fail("%s maps to function %s, not to its key" % (rc["address"], function))
    redrive = known(queue, "redrive_policy")
    max_receive = json.loads(redrive).get("maxReceiveCount") if redrive else None
    if max_receive is None:
        fail("%s has no redrive policy (maxReceiveCount)" % queue["address"])
    types = known(rc, "function_response_types") or []
    queues_of = region_entry(region).setdefault("queues", {})
    if function in queues_of:
        fail("two SQS event source mappings feed %s in %s" % (function, region))
    queues_of[function] = {
        "visibility_timeout_seconds": known(queue, "visibility_timeout_seconds"),
        "max_receive_count": int(max_receive) if max_receive is not None else None,
        "batch_size": known(rc, "batch_size"),
        "report_batch_item_failures": "ReportBatchItemFailures" in types,
    }

# --- Functions EventBridge invokes directly (asynchronous invocation) --------------------------
for rc in changes:
    if rc["type"] != "aws_lambda_function_event_invoke_config":
        continue
    region = region_of(rc.get("module_address"))
    function = short_name(known(rc, "function_name") or "")
    if rc.get("index") not in (None, function):
        fail("%s configures function %s, not its key" % (rc["address"], function))
    retries = known(rc, "maximum_retry_attempts")
    async_of = region_entry(region).setdefault("async", {})
    if function in async_of:
        fail("two event invoke configs for %s in %s" % (function, region))
    # Lambda makes 1 + maximum_retry_attempts attempts of an asynchronous event.
    async_of[function] = {"attempts": retries + 1 if isinstance(retries, int) else None}

# What the EventBridge rules of each region reach: a queue target must feed a function through
# an event source mapping; a function target must have its async retries set explicitly.
fed_by = {}  # (region, queue name) => function
for rc in changes:
    if rc["type"] == "aws_lambda_event_source_mapping" and rc["name"] != "push":
        source = known(rc, "event_source_arn") or ""
        if ":sqs:" in source:
            fed_by[(source.split(":")[3], source.split(":")[5])] = short_name(known(rc, "function_name") or "")
reached = {}  # region => {"queues": set, "async": set}
for rc in changes:
    if rc["type"] != "aws_cloudwatch_event_target":
        continue
    region = region_of(rc.get("module_address"))
    arn = known(rc, "arn") or ""
    if ":sqs:" in arn:
        queue = (arn.split(":")[3], arn.split(":")[5])
        if queue not in fed_by:
            fail("%s sends to %s, which feeds no function" % (rc["address"], arn))
            continue
        reached.setdefault(region, {"queues": set(), "async": set()})["queues"].add(fed_by[queue])
    elif ":lambda:" in arn:
        function = short_name(arn)
        if function not in regions.get(region, {}).get("async", {}):
            fail("%s invokes %s in %s, which has no aws_lambda_function_event_invoke_config "
                 "(Lambda's default of 2 retries would apply)" % (rc["address"], function, region))
        reached.setdefault(region, {"queues": set(), "async": set()})["async"].add(function)

for region, entry in regions.items():
    for kind in ("queues", "async"):
        live = reached.get(region, {}).get(kind, set())
        idle = sorted(f for f in entry.get(kind, {}) if f not in live)
        if idle:
            print("settings.sh: %s: %s %s deployed but no rule of the region reaches %s%s"
                  % (region, kind, ", ".join(idle), "it" if len(idle) == 1 else "them",
                     " (left out: --reached)" if scope == "reached" else ""), file=sys.stderr)
        if scope == "reached" and kind in entry:
            entry[kind] = {f: v for f, v in entry[kind].items() if f in live}

for region in topology_regions:
    if region not in regions:
        fail("topology region %s has nothing in the plan" % region)
    else:  # the same keys in every region, empty or not
        regions[region].setdefault("queues", {})
        regions[region].setdefault("async", {})
for region in regions:
    if region not in topology_regions:
        fail("the plan deploys to %s, which output \"regions\" does not list" % region)


def nulls(value, path):
    if value is None:
        fail("%s: no value" % path)
    elif isinstance(value, dict):
        for k, v in value.items():
            nulls(v, path + "." + k)


nulls(regions, "regions")
if errors:
    for e in errors:
        print("settings.sh: " + e, file=sys.stderr)
    sys.exit(1)

json.dump({"regions": regions}, sys.stdout, sort_keys=True, indent=2)
sys.stdout.write("\n")
PY
