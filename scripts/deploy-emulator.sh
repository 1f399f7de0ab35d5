#!/usr/bin/env bash
# `make deploy-emulator`, the dress rehearsal: infra/ applied by Terraform to an AWS API emulator
# (MiniStack, which runs Lambda functions as local processes) with the real Lambda bootstraps,
# and the seed's scenario played on it through the front door: users made in the user pool as
# an operator makes them, each signed in with `moebi login` and playing their part with
# `moebi --engine api` at their home region's HTTP API (its JWT authorizer checks the pool's
# tokens; the front-door function publishes). Every effect is done by a bootstrap that MiniStack
# started: EventBridge rules invoke the functions or feed their queues, SQS event source mappings
# invoke the queue-fed ones, DynamoDB global tables replicate. No `emulator_lacks_*` stand-in,
# no `moebi pump`, no replicator; what happened is read with the AWS CLI
# (scripts/emulator-check.py). What the front door must refuse is tried (401, 403, 400, 413,
# 409) and every region's table read before and after. Then events are published again, bad
# ones, a bootstrap killed; and Terraform's resources compared with those `moebi setup` makes in
# a second, fresh emulator.
#
#   ARTIFACTS_DIR=DIR scripts/deploy-emulator.sh      (what make does)
#   KEEP=1 ARTIFACTS_DIR=DIR scripts/deploy-emulator.sh   the same, then MiniStack left running
#   scripts/deploy-emulator.sh stop                   stops the MiniStack a KEEP=1 run left
#
# From the environment:
#   ARTIFACTS_DIR  required: <function>/bootstrap.zip of the five functions, built for THIS
#                  machine (MiniStack runs them as local processes; an arm64 zip fails there
#                  with "Exec format error"). `make deploy-emulator` builds them.
#   DOCTOR=VAR     sabotage: each bootstrap runs without the environment variable VAR (e.g.
#                  DOCTOR=MOEBI_TABLE); the run must then fail, naming the step that noticed.
#   SCREENSHOT     where the browser step writes its screenshot of the two pages (default: the
#                  temporary directory)
#   KEEP=1         leave the deployment's MiniStack running after the run (once the users are
#                  made), for a person to try with curl or `moebi login`: its URLs, the pool and
#                  client ids and the users' passwords are written to REHEARSAL_JSON (mode 0600);
#                  `scripts/deploy-emulator.sh stop` (make deploy-emulator-stop) stops it. A
#                  MiniStack an earlier KEEP=1 run left is stopped first.
#   UNTIL=users    stop after the users are made and signed in (with KEEP=1: make drill's
#                  deployment, without the checks that follow)
#   REHEARSAL_JSON (default: <repo>/.venv/rehearsal.json, git-ignored)
#   MOEBI          the moebi binary: `moebi login` and `moebi --engine api` play the scenario,
#                  `moebi setup` makes the second emulator's resources (default:
#                  <repo>/target/debug/moebi)
#   AWS_CLI        the AWS CLI (default: .venv/awscli/bin/aws; its Python runs emulator-check.py)
#   MINISTACK_VENV MiniStack 1.5.33's venv (default: .venv/ministack)
#   TF_PARALLELISM (default 30)
# MiniStack is started here on free loopback ports, in a clean environment (scripts/ministack.sh),
# through scripts/ministack-launch.py (two gaps of MiniStack patched at start, each with its
# reproduction), with a STATE_DIR of its own (Cognito's signing keys) in the temporary directory.
# At exit its process groups (MiniStack and every bootstrap it started) are killed and the code
# it extracted is removed with the temporary directory holding Terraform's state and data
# directory, MiniStack's STATE_DIR and the users' sessions; the only file written in the
# repository is infra/.terraform.lock.hcl (git-ignored), and with KEEP=1 REHEARSAL_JSON.
# Ends with `deploy-emulator: N passed, M failed (Ts)`; exits 1 if any step failed, naming it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INFRA="$ROOT/infra"
cd "$ROOT"
REHEARSAL_JSON="${REHEARSAL_JSON:-$ROOT/.venv/rehearsal.json}"
KEEP="${KEEP:-}"
case "$KEEP" in '' | 0) KEEP= ;; esac

# Stops the MiniStack a KEEP=1 run left (its process group) and removes its directory.
stop_kept() {
  [ -f "$REHEARSAL_JSON" ] || { echo "deploy-emulator: nothing kept ($REHEARSAL_JSON does not exist)"; return 0; }
  local pid work
  read -r pid work < <(python3 -c 'import json,sys; k=json.load(open(sys.argv[1]))["ministack"]; print(k["pid"], k["work_dir"])' "$REHEARSAL_JSON")
  if kill -0 -- -"$pid" 2>/dev/null; then
    kill -- -"$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 -- -"$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- -"$pid" 2>/dev/null || true
    echo "deploy-emulator: stopped the kept MiniStack (process group $pid)"
  fi
  case "$work" in */moebi-deploy.*) rm -rf "$work" ;; esac
  rm -f "$REHEARSAL_JSON"
  echo "deploy-emulator: removed $work and $REHEARSAL_JSON"
}
if [ "${1:-}" = stop ]; then
  stop_kept
  exit 0
fi

MOEBI="${MOEBI:-$ROOT/target/debug/moebi}"
AWS_CLI="${AWS_CLI:-$ROOT/.venv/awscli/bin/aws}"
TERRAFORM="${TERRAFORM:-terraform}"
TF_PARALLELISM="${TF_PARALLELISM:-30}"
ARTIFACTS_DIR="${ARTIFACTS_DIR:?ARTIFACTS_DIR=<dir with <function>/bootstrap.zip built for this machine> (make deploy-emulator builds them)}"
ARTIFACTS_DIR="$(cd "$ARTIFACTS_DIR" && pwd)"
DOCTOR="${DOCTOR:-}"
FUNCTIONS=(chat-send moebi-reply stock-add stock-status front-door sockets push)

for tool in "$MOEBI" "$AWS_CLI"; do
  [ -x "$tool" ] || { echo "deploy-emulator: $tool is missing (make deploy-emulator builds and installs it)" >&2; exit 1; }
done
case "$DOCTOR" in '' | [A-Za-z_]*) ;; *) echo "deploy-emulator: DOCTOR must name an environment variable" >&2; exit 2 ;; esac
CHECK=("$(dirname "$AWS_CLI")/python" "$ROOT/scripts/emulator-check.py")
# shellcheck source=scripts/ministack.sh
. "$ROOT/scripts/ministack.sh"

[ -z "$KEEP" ] || stop_kept
STARTED=$SECONDS
WORK="$(mktemp -d -t moebi-deploy.XXXXXX)"
KEPT=
cleanup() {
  ministack_stop setup
  [ -z "$KEPT" ] || return 0
  ministack_stop deploy
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# A copy, so that a rebuild of target/ during the run changes nothing.
cp "$MOEBI" "$WORK/moebi"

# The topology Terraform applies and `moebi setup` reads: the shipped one with faster queues.
# The shipped settings (function timeout 30 s, visibility 180 s = 6 x the timeout, a dead
# letter after 5 receives) would make a failed record wait 5 x 180 s for its DLQ and a killed
# batch 180 s for its retry. A 3 s function timeout keeps the rule visibility >= 6 x timeout
# (outputs.tf checks it): visibility 18 s; and 2 receives (one retry) before the DLQ. Routing
# (regions, participants, bots, stores) is the shipped file's, so the bootstraps' built-in
# topology (they are not given MOEBI_TOPOLOGY) routes the same way.
TOPOLOGY="$WORK/topology.json"
python3 - "$INFRA/topology.json" "$TOPOLOGY" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
t["queues"].update(function_timeout_seconds=3, visibility_timeout_seconds=18, max_receive_count=2)
json.dump(t, open(sys.argv[2], "w"), indent=2)
PY

export TF_DATA_DIR="$WORK/data"
# shellcheck source=infra/offline.sh
. "$INFRA/offline.sh"
offline_terraform "$WORK" # the AWS provider from the filesystem mirror, no version check
STATE="$WORK/terraform.tfstate"
# Test credentials for Terraform, the AWS CLI and moebi setup; nothing of a real profile.
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-west-2 AWS_DEFAULT_REGION=us-west-2
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL MOEBI_TOPOLOGY MOEBI_NAMESPACE

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
  [ -z "$DOCTOR" ] || echo "(DOCTOR=$DOCTOR: every bootstrap ran without $DOCTOR)"
  [ -z "$KEEP" ] || keep
  echo "deploy-emulator: $passed passed, $failed failed ($((SECONDS - STARTED))s)"
  # A failed apply exits 75 (EX_TEMPFAIL): the Makefile tries once more on a fresh emulator.
  # Seen once in about ten runs: MiniStack left an AddPermission unanswered for 5 minutes while
  # it had made the statement, and the AWS provider's retry got `ResourceConflictException:
  # The statement id (moebi-stock-status) provided already exists`. Any other failure is final.
  if [ "$failed" -gt 0 ] && [[ "${failures[0]}" == "terraform init + apply"* ]]; then exit 75; fi
  exit $((failed > 0 ? 1 : 0))
}

tf() { "$TERRAFORM" -chdir="$INFRA" "$@"; }

# The emulator of the deployment, started here (not in a step's subshell: it must outlive the
# step, and the exit trap stops it). Its URL and code directory are read by the steps.
ministack_start deploy "$WORK"
URL="$MS_URL_deploy"
CODE_DIR="$MS_CODE_deploy"

# The functions' code: ARTIFACTS_DIR's zips, or with DOCTOR each wrapped so that its bootstrap
# is `exec env -u VAR ./bootstrap.real` (MiniStack runs `bootstrap` in the extracted directory).
ZIPS="$ARTIFACTS_DIR"
artifacts() {
  for f in "${FUNCTIONS[@]}"; do
    [ -f "$ARTIFACTS_DIR/$f/bootstrap.zip" ] || { echo "no $ARTIFACTS_DIR/$f/bootstrap.zip"; return 1; }
  done
  python3 - "$ARTIFACTS_DIR" "$WORK/lambda" "$DOCTOR" "${FUNCTIONS[@]}" <<'PY'
import os, sys, zipfile
src, out, doctor, functions = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
for f in functions:
    with zipfile.ZipFile(os.path.join(src, f, "bootstrap.zip")) as z:
        info = z.getinfo("bootstrap")  # KeyError: not a Lambda custom runtime zip
        head = z.read(info)[:20]
        mode = (info.external_attr >> 16) & 0o777
        if head[:4] != b"\x7fELF" or mode & 0o111 == 0:
            sys.exit("%s/%s/bootstrap.zip: bootstrap is not an executable ELF file (mode %o)" % (src, f, mode))
        # e_machine (offset 18): the bootstrap must run on this machine.
        machine = int.from_bytes(head[18:20], "little")
        here = {"x86_64": 62, "aarch64": 183}.get(os.uname().machine)
        if here is not None and machine != here:
            sys.exit("%s/%s/bootstrap.zip: built for ELF machine %d, this machine is %s (%d): MiniStack runs it here"
                     % (src, f, machine, os.uname().machine, here))
        print("  %-13s %s (%d bytes, ELF machine %d)" % (f, os.path.join(src, f, "bootstrap.zip"), info.file_size, machine))
        if doctor:
            os.makedirs(os.path.join(out, f), exist_ok=True)
            with zipfile.ZipFile(os.path.join(out, f, "bootstrap.zip"), "w", zipfile.ZIP_DEFLATED) as w:
                real = zipfile.ZipInfo("bootstrap.real")
                real.external_attr = info.external_attr
                w.writestr(real, z.read(info))
                wrapper = zipfile.ZipInfo("bootstrap")
                wrapper.external_attr = 0o755 << 16
                w.writestr(wrapper, "#!/bin/sh\nexec env -u %s ./bootstrap.real\n" % doctor)
if doctor:
    print("DOCTOR=%s: each wrapped in %s/<fn>/bootstrap.zip, whose bootstrap runs `exec env -u %s ./bootstrap.real`" % (doctor, out, doctor))
PY
}

apply() {
  tf init -input=false -no-color >"$WORK/init.log" 2>&1 || { cat "$WORK/init.log"; return 1; }
  echo "terraform apply against $URL (state: a temporary directory, parallelism $TF_PARALLELISM)"
  # Every emulator_lacks_* switch at its default (false): MiniStack has KMS multi-region
  # replicas, global tables, redrive-allow policies, Lambda targets and event source mappings.
  tf apply -auto-approve -input=false -no-color -parallelism="$TF_PARALLELISM" -state="$STATE" \
    -var endpoint_url="$URL" -var artifacts_dir="$ZIPS" -var topology_file="$TOPOLOGY" \
    -var deletion_protection=false >"$WORK/apply.log" 2>&1 || {
    tail -n 60 "$WORK/apply.log"
    return 1
  }
  grep -E '^Apply complete' "$WORK/apply.log"
  tf output -state="$STATE" -json rules >"$WORK/rules.json"
  tf output -state="$STATE" -json >"$WORK/outputs.json"
}

wiring() { "${CHECK[@]}" wiring "$URL" "$TOPOLOGY" "$WORK/rules.json"; }
# The front door: the users (random passwords, never on a command line: the AWS CLI runs in
# emulator-check.py's process, moebi login reads MOEBI_PASSWORD), the scenario played with the
# moebi CLI, what it refuses. Their sessions and passwords: $WORK/sessions, $WORK/front.json.
users() { "${CHECK[@]}" users "$URL" "$TOPOLOGY" "$WORK/outputs.json" "$WORK/moebi" "$WORK/sessions" "$WORK/front.json"; }
scenario() { "${CHECK[@]}" scenario "$URL" "$TOPOLOGY" "$WORK/front.json" "$WORK/ids.json"; }
refusals() { "${CHECK[@]}" refusals "$URL" "$TOPOLOGY" "$WORK/front.json" "$MS_STATE_deploy" "$MINISTACK_VENV/bin/python" "$WORK/ids.json"; }
landed() { "${CHECK[@]}" landed "$URL" "$TOPOLOGY"; }
browser() { node "$ROOT/browser/test.mjs" "$WORK/front.json" "${SCREENSHOT:-$WORK/pages.png}"; }
live() { "${CHECK[0]}" "$ROOT/scripts/live-check.py" "$URL" "$WORK/outputs.json" "$WORK/front.json" "$MS_STATE_deploy" "$MINISTACK_VENV/bin/python"; }
twice() { "${CHECK[@]}" twice "$URL" "$WORK/ids.json"; }
bad() { "${CHECK[@]}" bad "$URL" "$WORK/ids.json"; }
logs() { "${CHECK[@]}" logs "$URL" "$WORK/ids.json" "$WORK/logs" "$ROOT/scripts/emf-check.py"; }
kill_bootstrap() { "${CHECK[@]}" kill "$URL" "$CODE_DIR" "$WORK/ids.json"; }

# KEEP=1: the deployment's MiniStack outlives the run (once its users exist), described in
# REHEARSAL_JSON. Called by finish, so also after a failed step (the state is there to look at).
keep() {
  echo
  if [ ! -f "$WORK/front.json" ]; then
    echo "KEEP=1: nothing kept (the run stopped before the users were made); MiniStack stopped as usual"
    return 0
  fi
  mkdir -p "$(dirname "$REHEARSAL_JSON")"
  python3 - "$WORK/front.json" "$REHEARSAL_JSON" "$URL" "$MS_PID_deploy" "$WORK" "$ZIPS" "$TOPOLOGY" "${TF_CLI_CONFIG_FILE:-}" <<'PY' || return 0
import json, os, sys
front, out, url, pid, work, zips, topology, cli_config = sys.argv[1:]
f = json.load(open(front))
kept = {
    "ministack": {"url": url, "pid": int(pid), "work_dir": work, "log": os.path.join(work, "deploy.log"),
                  "terraform_state": os.path.join(work, "terraform.tfstate")},
    # How the deployment was applied, so that make drill can apply it again (var.evacuated).
    "terraform": {"data_dir": os.path.join(work, "data"), "cli_config": cli_config,
                  "state": os.path.join(work, "terraform.tfstate"), "outputs": os.path.join(work, "outputs.json"),
                  "vars": {"endpoint_url": url, "artifacts_dir": zips, "topology_file": topology,
                           "deletion_protection": "false"}},
    "cognito_url": f["cognito_url"], "region": f["region"], "user_pool_id": f["user_pool_id"],
    "client_id": f["client_id"], "jwt_issuer": f["jwt_issuer"], "apis": f["apis"],
    "users": f["users"], "moebi": f["moebi"], "sessions": f["sessions"],
    "stop": "make deploy-emulator-stop (or: kill -- -%s; rm -rf %s %s)" % (pid, work, out),
}
fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w") as w:
    json.dump(kept, w, indent=2)
alex = f["users"]["alex"]
print("KEEP=1: MiniStack left running at %s (process group %s; log %s/deploy.log)" % (url, pid, work))
print("  HTTP APIs: " + ", ".join("%s %s" % kv for kv in f["apis"].items()))
print("  user pool %s, app client %s, Cognito at %s; users, passwords, ids: %s (mode 0600)"
      % (f["user_pool_id"], f["client_id"], url, out))
print("  signed in already (tokens valid 1 h): %s --sessions %s --engine api inbox alex" % (f["moebi"], f["sessions"]))
print("  sign in anew:  MOEBI_PASSWORD=%s moebi login alex --api %s --client-id %s --cognito-url %s"
      % (alex["password"], alex["api"], f["client_id"], url))
print("  with curl:     curl -H \"Authorization: Bearer $(jq -r .access_token %s/alex.json)\" %s/inbox" % (f["sessions"], alex["api"]))
print("  stop it:       make deploy-emulator-stop   (or: kill -- -%s; rm -rf %s %s)" % (pid, work, out))
PY
  KEPT=1
}

# `moebi setup` in a second, fresh MiniStack (same topology file); both listed with the AWS CLI.
against_setup() {
  "${CHECK[@]}" dump "$URL" "$TOPOLOGY" "$WORK/terraform.json" || return 1
  # This step runs in a subshell: the exit trap of the script does not know this emulator.
  trap 'ministack_stop setup' EXIT
  ministack_start setup "$WORK" || return 1
  MOEBI_TOPOLOGY="$TOPOLOGY" "$WORK/moebi" --engine aws --endpoint-url "$MS_URL_setup" setup || return 1
  "${CHECK[@]}" dump "$MS_URL_setup" "$TOPOLOGY" "$WORK/setup.json" || return 1
  "${CHECK[@]}" compare "$WORK/setup.json" "$WORK/terraform.json" || return 1
  # moebi's own driver on setup's resources: its pump and its replicator (no global tables
  # there) over MiniStack's streams, across processes. The second command resumes from the
  # positions the first kept, which MiniStack finds only by their exact text (it pads
  # sequence numbers with zeros; a position read back as a Number was refused with
  # `TrimmedDataAccessException: Sequence number … not found on stream`).
  local cli=(env MOEBI_TOPOLOGY="$TOPOLOGY" "$WORK/moebi" --engine aws --endpoint-url "$MS_URL_setup")
  "${cli[@]}" stock add store-1 nike 30 >/dev/null || return 1
  "${cli[@]}" stock add store-3 nike 5 >/dev/null || return 1
  local got
  got="$("${cli[@]}" stock status nike --as kate)" || return 1
  [ "$got" = "nike: 35" ] || { echo "  FAILED: moebi on setup's resources: kate asks nike: got $got, want nike: 35"; return 1; }
  echo "  moebi --engine aws on setup's resources (pump, replicator over MiniStack's streams): $got"
}

step "Lambda zips: real bootstraps for this machine${DOCTOR:+ (DOCTOR=$DOCTOR)}" artifacts
[ -z "$DOCTOR" ] || ZIPS="$WORK/lambda"
step "terraform init + apply of infra/ against MiniStack (no emulator_lacks_* switch)" apply
step "rules -> queues, functions and other regions' buses; event source mappings, async configs, dashboards (AWS CLI)" wiring
step "users in the pool as an operator makes them (aws cognito-idp), each signed in with moebi login" users
# UNTIL=users (make drill): a deployment with its users signed in, and nothing more.
[ "${UNTIL:-}" != users ] || finish
step "the scenario through the front door: moebi --engine api at each one's home region's API; effects by the bootstraps" scenario
step "the front door refuses (401 no/expired/tampered/foreign token, 403, 400, 413, 409) and writes nothing" refusals
step "inboxes and shares in every region (global tables; AWS CLI: dynamodb query)" landed
step "the web page in headless Chromium: alex and kate live, chicken?, an error in the API's words, a dropped socket caught up" browser
step "live: sockets refused without a valid participant's token; pushes across regions; push latency and reads per message" live
step "the same events published again change nothing" twice
step "bad events end in a DLQ with their reason (SQS redrive; on-failure destination)" bad
step "what operators read: the bootstraps' JSON log lines and EMF metrics in CloudWatch Logs, following one event" logs
step "a bootstrap killed (SIGKILL) with a batch in hand: the mapping retries it, nothing lost or doubled" kill_bootstrap
step "the same resources as moebi setup (second MiniStack, AWS CLI listings compared); moebi --engine aws on them" against_setup
finish
