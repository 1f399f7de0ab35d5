#!/usr/bin/env bash
# Offline checks of infra/: fmt, init, validate, terraform test (mocked providers), an offline
# plan of the shipped topology and of one with an extra participant, checkov.
# Run from the repository root: `bash infra/check.sh` (or `make infra-test`).
# No network and no AWS credentials needed; uses the AWS provider from /opt/tf-plugins when
# that filesystem mirror exists, else a normal `terraform init`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INFRA="$ROOT/infra"
cd "$ROOT"

TERRAFORM="${TERRAFORM:-terraform}"
CHECKOV="${CHECKOV:-.venv/checkov/bin/checkov}"
FAKE_ACCOUNT="123456789012"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# shellcheck source=infra/offline.sh
. "$INFRA/offline.sh"
offline_terraform "$WORK"

passed=0
failed=0
failures=()

step() { # step <title> <function>
  local title="$1" fn="$2" start=$SECONDS
  printf '\n==== infra: %s ====\n' "$title"
  if ( "$fn" ); then
    passed=$((passed + 1))
    printf -- '---- ok: %s (%ss)\n' "$title" "$((SECONDS - start))"
  else
    failed=$((failed + 1))
    failures+=("$title")
    printf -- '---- FAILED: %s (%ss)\n' "$title" "$((SECONDS - start))"
  fi
}

tf() { "$TERRAFORM" -chdir="$INFRA" "$@"; }

fmt() { "$TERRAFORM" fmt -check -recursive -diff -no-color infra; }

init() { tf init -backend=false -input=false -no-color; }

validate() { tf validate -no-color; }

tftest() { tf test -no-color; }

plan_shipped() {
  offline_env
  tf plan -refresh=false -lock=false -input=false -no-color \
    -var offline=true -var account_id="$FAKE_ACCOUNT" -out="$WORK/shipped.tfplan" >"$WORK/shipped.log" 2>&1 || {
    cat "$WORK/shipped.log"
    return 1
  }
  grep -E '^Plan:' "$WORK/shipped.log"
  if grep -q 'Some function zips are missing' "$WORK/shipped.log"; then
    echo "note: function zips not built (make build): the plan works without them, apply needs them"
  fi
}

# The extra topology adds participant lina (eu-west-1) and nothing else: the plan must route
# her chats and stock questions from every region, to her home region.
plan_extra() {
  offline_env
  local fixture="tests/fixtures/topology-extra.json"
  tf plan -refresh=false -lock=false -input=false -no-color \
    -var offline=true -var account_id="$FAKE_ACCOUNT" -var topology_file="$fixture" \
    -out="$WORK/extra.tfplan" >"$WORK/extra.log" 2>&1 || {
    cat "$WORK/extra.log"
    return 1
  }
  grep -E '^Plan:' "$WORK/extra.log" || true
  tf show -json "$WORK/extra.tfplan" >"$WORK/extra.json"
  python3 - "$WORK/extra.json" "$INFRA/$fixture" <<'PY'
import json, sys

plan = json.load(open(sys.argv[1]))
topology = json.load(open(sys.argv[2]))
who, home = "lina", next(p["home"] for p in topology["participants"] if p["name"] == "lina")

def resources(module):
    yield from module.get("resources", [])
    for child in module.get("child_modules", []):
        yield from resources(child)

rules, targets = {}, {}
for r in resources(plan["planned_values"]["root_module"]):
    region = r["address"].split(".")[1].replace("region_", "").split("[")[0].replace("_", "-") if r["address"].startswith("module.") else None
    if r["type"] == "aws_cloudwatch_event_rule":
        rules[(region, r["values"]["name"])] = json.loads(r["values"]["event_pattern"])
    elif r["type"] == "aws_cloudwatch_event_target":
        targets[(region, r["values"]["rule"])] = r["values"]["arn"]

bad = []
for region in topology["regions"]:
    for kind, field, local in (("chat.send", "to", ":sqs:%s:" + "%s:moebi-chat-send"), ("stock.status", "asker", ":lambda:%s:" + "%s:function:moebi-stock-status")):
        hits = [(name, targets.get((region, name))) for (reg, name), p in rules.items()
                if reg == region and p["detail-type"] == [kind] and who in p["detail"].get(field, [])]
        want = (local % (home, plan["variables"]["account_id"]["value"])) if region == home else ":events:%s:" % home
        ok = len(hits) == 1 and hits[0][1] is not None and want in hits[0][1]
        print("  %-9s %-12s %s -> %s %s" % (region, kind, hits[0][0] if hits else "(no rule)", hits[0][1] if hits else "-", "ok" if ok else "WRONG"))
        if not ok:
            bad.append((region, kind))
sys.exit(1 if bad else 0)
PY
}

checkov_scan() {
  if [ ! -x "$CHECKOV" ]; then
    echo "checkov not found at $CHECKOV (set CHECKOV, or run: make .venv/checkov/bin/checkov)"
    return 1
  fi
  # No network: skip downloads of external guidelines/mappings.
  BC_SKIP_MAPPING=TRUE "$CHECKOV" --config-file infra/.checkov.yaml
}

step "terraform fmt -check -recursive infra" fmt
step "terraform init -backend=false" init
step "terraform validate" validate
step "terraform test (mocked providers)" tftest
step "offline plan: shipped topology" plan_shipped
step "offline plan: topology + participant lina routed from every region" plan_extra
step "checkov" checkov_scan

echo
if [ "$failed" -gt 0 ]; then
  printf 'failed: %s\n' "${failures[@]}"
fi
echo "infra: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
