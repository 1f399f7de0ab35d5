#!/usr/bin/env bash
# make load-rehearsal: `moebi load` through the rehearsal's HTTP APIs (a MiniStack that
# `make deploy-emulator KEEP=1` left running), a sweep of offered rates with the Rust functions,
# then the same sweep with the Python peers of stock-add and chat-send (benches/python/, the
# bench's) in their place: the same functions, rules, queues, event source mappings and roles,
# only their code and runtime swapped with the AWS CLI. Both curves in one sweep plot; the Rust
# code is put back at the end, also on failure.
#
#   LOAD_SWEEP=5,10,20,40  LOAD_DURATION=10s  LOAD_OUT=.moebi/load-rehearsal  SEED=n
#   MOEBI (the CLI)  AWS_CLI  BENCH_PYTHON (a Python with boto3, whose packages go in the zip)
#   ARTIFACTS_DIR (the Rust zips the rehearsal deployed, put back at the end)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
REHEARSAL_JSON="${REHEARSAL_JSON:-$ROOT/.venv/rehearsal.json}"
MOEBI="${MOEBI:?the moebi CLI}"
AWS_CLI="${AWS_CLI:?the AWS CLI}"
BENCH_PYTHON="${BENCH_PYTHON:?a Python with boto3 (.venv/bench)}"
ARTIFACTS_DIR="${ARTIFACTS_DIR:?the Rust zips the rehearsal deployed}"
SWEEP="${LOAD_SWEEP:-5,10,20,40,60,80}"
DURATION="${LOAD_DURATION:-10s}"
OUT="${LOAD_OUT:-$ROOT/.moebi/load-rehearsal}"
SEED="${SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}"
PEERS=(stock-add chat-send)

[ -f "$REHEARSAL_JSON" ] || { echo "load-rehearsal: no rehearsal left running ($REHEARSAL_JSON): run make deploy-emulator KEEP=1 first" >&2; exit 1; }
read -r URL SESSIONS < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["ministack"]["url"], r["sessions"])' "$REHEARSAL_JSON")
curl -fsS -o /dev/null "$URL/_ministack/health" \
  || { echo "load-rehearsal: the rehearsal's MiniStack at $URL does not answer: run make deploy-emulator KEEP=1 again" >&2; exit 1; }
REGIONS=$(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["regions"]))' "$ROOT/infra/topology.json")
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL MOEBI_NAMESPACE
mkdir -p "$OUT"

load() { # load <label> <out> [--beside ...]: a warm-up (not kept: every function's first
  # environments started, as on a deployment already serving), then the sweep
  local label="$1" out="$2"; shift 2
  "$MOEBI" --sessions "$SESSIONS" --engine api --endpoint-url "$URL" load --rate 10 --duration 5s \
    --seed "$SEED" --out "$out/warm-up" >/dev/null
  "$MOEBI" --sessions "$SESSIONS" --engine api --endpoint-url "$URL" load --sweep "$SWEEP" \
    --duration "$DURATION" --seed "$SEED" --label "$label" --out "$out" "$@"
}
lambda() { # lambda <region> <args...>
  "$AWS_CLI" --endpoint-url "$URL" --region "$1" lambda "${@:2}" --output json >/dev/null
}
# Swaps each peer function's code and runtime in every region: swap python | swap rust.
swap() {
  local to="$1" region fn handler runtime zip
  for region in $REGIONS; do
    for fn in "${PEERS[@]}"; do
      if [ "$to" = python ]; then
        runtime=python3.11 handler="${fn//-/_}.handler" zip="$OUT/python-peers.zip"
      else
        runtime=provided.al2023 handler=bootstrap zip="$ARTIFACTS_DIR/$fn/bootstrap.zip"
      fi
      lambda "$region" update-function-configuration --function-name "moebi-$fn" --runtime "$runtime" --handler "$handler"
      lambda "$region" update-function-code --function-name "moebi-$fn" --zip-file "fileb://$zip"
    done
  done
  echo "load-rehearsal: ${PEERS[*]} now run the $to code in ${REGIONS// /, }"
}

for fn in "${PEERS[@]}"; do
  [ -f "$ARTIFACTS_DIR/$fn/bootstrap.zip" ] || { echo "load-rehearsal: no $ARTIFACTS_DIR/$fn/bootstrap.zip to put back afterwards" >&2; exit 1; }
done

# The peers' zip: the handlers, the topology beside them, and boto3 with what it needs (the
# Lambda Python runtime carries boto3; MiniStack's runs the handler with its host's python3).
"$BENCH_PYTHON" - "$ROOT" "$OUT/python-peers.zip" <<'PY'
import os, sys, zipfile, sysconfig
root, out = sys.argv[1], sys.argv[2]
site = sysconfig.get_paths()["purelib"]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for name in sorted(os.listdir(os.path.join(root, "benches", "python"))):
        if name.endswith(".py"):
            z.write(os.path.join(root, "benches", "python", name), name)
    z.write(os.path.join(root, "infra", "topology.json"), "topology.json")
    for package in ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py"):
        path = os.path.join(site, package)
        if os.path.isfile(path):
            z.write(path, package)
            continue
        for base, _, files in os.walk(path):
            for f in files:
                if not f.endswith(".pyc"):
                    full = os.path.join(base, f)
                    z.write(full, os.path.relpath(full, site))
print("load-rehearsal: the Python peers' zip: %s (%d bytes)" % (out, os.path.getsize(out)))
PY

trap 'swap rust' EXIT
echo "load-rehearsal: seed $SEED; the Rust functions"
load rust "$OUT/rust"
swap python
echo "load-rehearsal: the Python peers of ${PEERS[*]} (the other functions stay Rust)"
load "python peers" "$OUT/python" --beside "rust=$OUT/rust/sweep.json"
