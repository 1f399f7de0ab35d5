#!/usr/bin/env bash
# `make deploy-emulator`: infra/ applied by Terraform to an AWS API emulator (moto), the seed's
# scenario played by `moebi --engine aws` on what Terraform made, checked with the AWS CLI, and
# Terraform's resources compared with those `moebi setup` makes in a second, fresh emulator.
#
#   scripts/with-emulator.sh MOTO_SERVER -- scripts/deploy-emulator.sh   (what make does)
#
# Needs MOEBI_EMULATOR_URL (with-emulator.sh sets it) and, from the environment:
#   MOEBI    the moebi binary (default: <repo>/target/debug/moebi)
#   MOTO     moto_server, for the second emulator (default: .venv/aws/bin/moto_server)
#   AWS_CLI  the AWS CLI (default: .venv/awscli/bin/aws; its Python runs emulator-check.py)
#   ARTIFACTS_DIR  <function>/bootstrap.zip to deploy (default: placeholder zips, see below)
#   TF_PARALLELISM (default 30)
# Terraform's state and data directory live in a temporary directory, removed at the end; the
# only file written in the repository is infra/.terraform.lock.hcl (git-ignored).
# Ends with `deploy-emulator: N passed, M failed`; exits 1 if any step failed, naming it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INFRA="$ROOT/infra"
cd "$ROOT"

URL="${MOEBI_EMULATOR_URL:?run under scripts/with-emulator.sh (make deploy-emulator)}"
MOEBI="${MOEBI:-$ROOT/target/debug/moebi}"
MOTO="${MOTO:-$ROOT/.venv/aws/bin/moto_server}"
AWS_CLI="${AWS_CLI:-$ROOT/.venv/awscli/bin/aws}"
TERRAFORM="${TERRAFORM:-terraform}"
TF_PARALLELISM="${TF_PARALLELISM:-30}"
TOPOLOGY="$INFRA/topology.json"
FUNCTIONS=(chat-send moebi-reply stock-add stock-status)

for tool in "$MOEBI" "$MOTO" "$AWS_CLI"; do
  [ -x "$tool" ] || { echo "deploy-emulator: $tool is missing (make deploy-emulator builds and installs it)" >&2; exit 1; }
done
CHECK=("$(dirname "$AWS_CLI")/python" "$ROOT/scripts/emulator-check.py")

WORK="$(mktemp -d -t moebi-deploy.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
# A copy, so that a rebuild of target/ during the run changes nothing.
cp "$MOEBI" "$WORK/moebi"
export MOEBI_TOPOLOGY="$TOPOLOGY" # moebi reads the file Terraform reads
export TF_DATA_DIR="$WORK/data"
# shellcheck source=infra/offline.sh
. "$INFRA/offline.sh"
offline_terraform "$WORK" # the AWS provider from the filesystem mirror, no version check
STATE="$WORK/terraform.tfstate"

passed=0
failed=0
failures=()
step() { # step <title> <function>: stops at the first failure (later steps need earlier ones)
  local title="$1" fn="$2" start=$SECONDS
  printf '\n==== deploy-emulator: %s ====\n' "$title"
  if ( "$fn" ); then
    passed=$((passed + 1))
    printf -- '---- ok: %s (%ss)\n' "$title" "$((SECONDS - start))"
  else
    failed=$((failed + 1))
    failures+=("$title")
    printf -- '---- FAILED: %s (%ss)\n' "$title" "$((SECONDS - start))"
    finish
  fi
}
finish() {
  echo
  [ "$failed" -eq 0 ] || printf 'failed: %s (the steps after it did not run)\n' "${failures[@]}"
  echo "deploy-emulator: $passed passed, $failed failed"
  exit $((failed > 0 ? 1 : 0))
}

tf() { "$TERRAFORM" -chdir="$INFRA" "$@"; }

# The functions' code. moto stores a function's zip and never runs it here (the emulator has
# no Lambda runtime: emulator_lacks_lambda_invoke), and `moebi pump` runs the very handlers the
# zips would hold, in-process. So placeholder zips (a `bootstrap` that exits 1) do: no cross
# build (`make build`, minutes of arm64 compilation) before every run. ARTIFACTS_DIR deploys
# real zips instead.
artifacts() {
  if [ -n "${ARTIFACTS_DIR:-}" ]; then
    for f in "${FUNCTIONS[@]}"; do [ -f "$ARTIFACTS_DIR/$f/bootstrap.zip" ] || { echo "no $ARTIFACTS_DIR/$f/bootstrap.zip"; return 1; }; done
    echo "real zips from $ARTIFACTS_DIR"
    return
  fi
  python3 - "$WORK/lambda" "${FUNCTIONS[@]}" <<'PY'
import os, sys, zipfile
out = sys.argv[1]
for f in sys.argv[2:]:
    os.makedirs(os.path.join(out, f), exist_ok=True)
    with zipfile.ZipFile(os.path.join(out, f, "bootstrap.zip"), "w") as z:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        z.writestr(info, "#!/bin/sh\necho 'moebi %s: placeholder, not run on the emulator' >&2\nexit 1\n" % f)
print("placeholder zips in " + out)
PY
}

apply() {
  tf init -input=false -no-color >"$WORK/init.log" 2>&1 || { cat "$WORK/init.log"; return 1; }
  echo "terraform apply against $URL (state: a temporary directory, parallelism $TF_PARALLELISM)"
  tf apply -auto-approve -input=false -no-color -parallelism="$TF_PARALLELISM" -state="$STATE" \
    -var endpoint_url="$URL" -var artifacts_dir="${ARTIFACTS_DIR:-$WORK/lambda}" \
    -var emulator_lacks_kms_replicas=true -var emulator_lacks_global_tables=true \
    -var emulator_lacks_lambda_invoke=true -var emulator_lacks_sqs_redrive_allow_policy=true \
    -var deletion_protection=false >"$WORK/apply.log" 2>&1 || {
    tail -n 60 "$WORK/apply.log"
    return 1
  }
  grep -E '^Apply complete' "$WORK/apply.log"
  tf output -state="$STATE" -json rules >"$WORK/rules.json"
}

wiring() { "${CHECK[@]}" wiring "$URL" "$TOPOLOGY" "$WORK/rules.json"; }

moebi() { "$WORK/moebi" --engine aws --endpoint-url "$URL" "$@"; }

expect() { # expect <what> <want> <command...>: runs a moebi command, compares its output
  local what="$1" want="$2" got
  shift 2
  if ! got="$(moebi "$@" 2>&1)"; then
    printf '  FAILED: %s: moebi %s:\n%s\n' "$what" "$*" "$got"
    return 1
  fi
  if [ -n "$want" ] && [ "$got" != "$want" ]; then
    printf '  FAILED: %s: moebi %s printed:\n%s\n  want:\n%s\n' "$what" "$*" "$got" "$want"
    return 1
  fi
  printf '  %-44s %s\n' "$what" "$(head -n 1 <<<"$got")"
}

# The seed's scenario (README), every event through Terraform's buses, rules and queues.
scenario() {
  local ok=0
  expect "1. alex sends hi to kate" "" send alex kate hi || ok=1
  expect "   kate's inbox" "alex: hi" inbox kate || ok=1
  expect "2. kate answers" "" send kate alex "how are you?" || ok=1
  expect "3. alex sends hi to moebi" "" send alex moebi hi || ok=1
  expect "   moebi's inbox" "alex: hi" inbox moebi || ok=1
  local id
  id="$(moebi inbox alex --json | python3 -c 'import json,sys; print(*[json.loads(l)["in_reply_to"] for l in sys.stdin if json.loads(l).get("in_reply_to")])')" || ok=1
  expect "   alex's inbox" "$(printf 'kate: how are you?\nmoebi: chicken?  (reply to %s)' "$id")" inbox alex || ok=1
  expect "   kate's inbox: nothing from moebi" "alex: hi" inbox kate || ok=1
  expect "4. store-1 adds nike x30" "" stock add store-1 nike 30 || ok=1
  expect "   store-3 adds adidas x35" "" stock add store-3 adidas 35 || ok=1
  expect "   store-3 adds nike x5" "" stock add store-3 nike 5 || ok=1
  expect "5. kate asks: nike" "nike: 35" stock status nike --as kate || ok=1
  expect "   kate asks: puma" "there is no product puma" stock status puma --as kate || ok=1
  expect "   kate asks: everything" "adidas: 35, nike: 35" stock status --as kate || ok=1
  expect "   no dead letters" "no dead letters" dlq || ok=1
  return $ok
}

landed() { "${CHECK[@]}" landed "$URL" "$TOPOLOGY"; }

# `moebi setup` in a second, fresh emulator; both deployments listed through the AWS CLI.
against_setup() {
  "${CHECK[@]}" dump "$URL" "$TOPOLOGY" "$WORK/terraform.json" || return 1
  # shellcheck disable=SC2016 # expanded by the inner shell, which with-emulator.sh starts
  "$ROOT/scripts/with-emulator.sh" "$MOTO" -- bash -c '"$1" --engine aws --endpoint-url "$MOEBI_EMULATOR_URL" setup \
    && "$2" "$3" dump "$MOEBI_EMULATOR_URL" "$4" "$5"' _ "$WORK/moebi" "${CHECK[@]}" "$TOPOLOGY" "$WORK/setup.json" || return 1
  "${CHECK[@]}" compare "$WORK/setup.json" "$WORK/terraform.json"
}

step "Lambda zips" artifacts
step "terraform init + apply of infra/ against the emulator" apply
step "rules -> queues and other regions' buses, dashboards (AWS CLI: events list-rules, list-targets-by-rule, sqs list-queues, cloudwatch get-dashboard)" wiring
step "the scenario, with moebi --engine aws on Terraform's resources" scenario
step "inboxes and shares in every region (AWS CLI: dynamodb query)" landed
step "the same resources as moebi setup (second emulator, AWS CLI listings compared)" against_setup
finish
