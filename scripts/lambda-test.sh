#!/usr/bin/env bash
# Each function's release `bootstrap` under cargo-lambda's Runtime API emulator, invoked with
# every fixture of its kind: good records must show up in the AWS API emulator's DynamoDB, bad
# ones must be listed in `batchItemFailures`. Run by `make test`, inside scripts/with-emulator.sh
# (MOEBI_EMULATOR_URL) with cargo-lambda on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${MOEBI_EMULATOR_URL:?the AWS API emulator is not running: run make test}"
command -v cargo-lambda >/dev/null || { echo "lambda-test: cargo-lambda is missing (make installs it)" >&2; exit 1; }

FUNCTIONS=(chat-send moebi-reply stock-add stock-status front-door)
# Where cargo puts what it builds: honours CARGO_TARGET_DIR and build.target-dir.
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
# MOEBI_LAMBDA_BUILD=debug runs the bootstraps of the dev build the other tests use (make test
# builds it once); by default the shipped profile is built, as `make build` builds it.
if [ "${MOEBI_LAMBDA_BUILD:-function}" = debug ]; then
  echo "lambda-test: the dev build's bootstraps (in $target/debug)"
  bootstrap() { echo "$target/debug/$1"; }
else
  echo "lambda-test: building the release bootstraps (in $target)"
  cargo lambda build --profile function $(printf -- '-p %s ' "${FUNCTIONS[@]}")
  cargo build --quiet --bin moebi
  bootstrap() { echo "$target/lambda/$1/bootstrap"; }
fi
for fn in "${FUNCTIONS[@]}"; do
  [ -x "$(bootstrap "$fn")" ] || { echo "lambda-test: no bootstrap at $(bootstrap "$fn")" >&2; exit 1; }
done
moebi() { "$target/debug/moebi" --engine aws --endpoint-url "$MOEBI_EMULATOR_URL" "$@"; }
moebi setup >/dev/null

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
work=$(mktemp -d)
# `watch` stops when its standard input closes: keep it open until we are done.
mkfifo "$work/stdin"
cargo lambda watch --only-lambda-apis -A 127.0.0.1 -P "$port" <"$work/stdin" >"$work/watch.log" 2>&1 &
watch=$!
exec 9>"$work/stdin"
cleanup() { exec 9>&-; kill "$watch" 2>/dev/null || true; wait "$watch" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 1 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.2; done

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "  ok    $*"; }
fail() { failed=$((failed + 1)); echo "  FAIL  $*"; }

# Extra environment of the bootstraps, and the name of their logs (<fn><LOG_SUFFIX>.log).
LOG_ENV=()
LOG_SUFFIX=
# invoke FUNCTION FIXTURE: runs the bootstrap in the fixture's region, invokes it once, prints the response.
invoke() {
  local fn=$1 fixture=$2 region
  region=$(python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print(p["Records"][0]["awsRegion"] if "Records" in p else p["region"] if "region" in p else p["requestContext"]["domainName"].split(".")[2])' "$fixture")
  env "${LOG_ENV[@]}" AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128 AWS_LAMBDA_FUNCTION_NAME=_ \
    AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$port/.rt" \
    AWS_ENDPOINT_URL="$MOEBI_EMULATOR_URL" AWS_REGION="$region" \
    MOEBI_REGION="$region" MOEBI_TABLE=moebi MOEBI_BUS=moebi RUST_LOG=info \
    "$(bootstrap "$fn")" >>"$work/$fn$LOG_SUFFIX.log" 2>&1 &
  local fnpid=$!
  local out status=0
  out=$(timeout 60 cargo lambda invoke -A 127.0.0.1 -P "$port" -F "$fixture" _ 2>&1) || status=$?
  kill "$fnpid" 2>/dev/null || true
  wait "$fnpid" 2>/dev/null || true
  echo "$out"
  return $status
}

# expect_failures FIXTURE RESPONSE MARKER...: batchItemFailures lists exactly the records whose body holds a marker.
expect_failures() {
  python3 - "$@" <<'PY'
import json, sys
fixture, response, markers = sys.argv[1], sys.argv[2], sys.argv[3:]
records = json.load(open(fixture))["Records"]
want = [r["messageId"] for r in records if any(m in r["body"] for m in markers)]
got = [f["itemIdentifier"] for f in json.loads(response)["batchItemFailures"]]
if got != want:
    sys.exit(f"batchItemFailures {got}, expected {want}")
PY
}

echo "lambda-test: good fixtures"
for fn in "${FUNCTIONS[@]}"; do
  [ "$fn" = front-door ] && continue
  for fixture in events/"$fn"/*.json; do
    if out=$(invoke "$fn" "$fixture"); then
      case "$fixture" in
        *sqs-batch.json) expect_failures "$fixture" "$out" && pass "$fn $fixture: no batchItemFailures" || fail "$fn $fixture: $out" ;;
        *) [ "$out" = "null" ] && pass "$fn $fixture: succeeded" || fail "$fn $fixture: $out" ;;
      esac
    else
      fail "$fn $fixture: invoke failed: $out"
    fi
  done
done

echo "lambda-test: bad fixtures"
declare -A marker=(
  [broken-json]='"x1"' [unknown-kind]=bad-kind [missing-field]=bad-missing [wrong-type]=bad-type
  [empty-text]=bad-empty [oversized-text]=bad-long [zero-qty]=bad-zero [negative-qty]=bad-negative
  [huge-qty]=bad-huge [unknown-participant]=bad-who
)
for name in "${!marker[@]}"; do
  fixture=events/bad/$name.json
  fn=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Records"][0]["eventSourceARN"].rsplit(":",1)[1].removeprefix("moebi-"))' "$fixture")
  out=$(invoke "$fn" "$fixture") || true
  expect_failures "$fixture" "$out" "${marker[$name]}" && pass "$fn $fixture: only the bad record failed" || fail "$fn $fixture: $out"
done
out=$(invoke stock-add events/bad/mixed-batch.json) || true
expect_failures events/bad/mixed-batch.json "$out" mix-2 mix-4 mix-5 && pass "stock-add events/bad/mixed-batch.json: exactly its 3 bad records failed" || fail "mixed batch: $out"
if out=$(invoke stock-status events/bad/eventbridge-unknown-asker.json); then
  fail "stock-status with an unknown asker succeeded: $out"
else
  grep -q 'unknown participant' <<<"$out" && pass "stock-status events/bad/eventbridge-unknown-asker.json: the error names the asker" || fail "unknown asker: $out"
fi

echo "lambda-test: the front door (API Gateway HTTP API requests, payload 2.0)"
declare -A status=(
  [send]=202 [add-stock]=202 [ask-stock]=202 [inbox]=200 [no-claims]=401 [forged-sender]=403
  [participant-adds-stock]=403 [malformed]=400 [zero-qty]=400 [oversized]=413
)
for name in send add-stock ask-stock inbox no-claims forged-sender participant-adds-stock malformed zero-qty oversized; do
  fixture=events/front-door/$name.json
  if out=$(invoke front-door "$fixture"); then
    got=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["statusCode"])' "$out" 2>/dev/null || echo "?")
    [ "$got" = "${status[$name]}" ] && pass "front-door $fixture: $got" || fail "front-door $fixture: expected ${status[$name]}: $out"
  else
    fail "front-door $fixture: invoke failed: $out"
  fi
done

echo "lambda-test: metrics (EMF) and logs"
for fn in "${FUNCTIONS[@]}"; do
  out=$(scripts/emf-check.py "$fn" "$work/$fn.log" 2>&1) && pass "$out" || fail "$out"
done
# Lambda's logging configuration: plain text at WARN, and the metrics still printed.
LOG_ENV=(AWS_LAMBDA_LOG_FORMAT=Text AWS_LAMBDA_LOG_LEVEL=WARN)
LOG_SUFFIX=.text
invoke stock-add events/bad/mixed-batch.json >/dev/null || true
out=$(scripts/emf-check.py stock-add "$work/stock-add.text.log" --text-warn 2>&1) && pass "Text at WARN: $out" || fail "Text at WARN: $out"
LOG_ENV=()
LOG_SUFFIX=

echo "lambda-test: Lambda Managed Instances (one process, several invocations at once)"
# cargo-lambda's emulator with --concurrency hands out several invocations at once; the bootstrap
# learns how many from AWS_LAMBDA_MAX_CONCURRENCY, as on Managed Instances, and runs them together.
mi_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cargo lambda watch --only-lambda-apis --concurrency 4 -A 127.0.0.1 -P "$mi_port" <"$work/stdin" >"$work/watch-mi.log" 2>&1 &
mi_watch=$!
for _ in $(seq 1 100); do (echo >"/dev/tcp/127.0.0.1/$mi_port") 2>/dev/null && break; sleep 0.2; done
# 8 batches of 10 adds, batch b adding 1..10 units of product mi-b<b> at store-2 (us-east-1).
python3 - "$work" <<'PY'
import json, sys, uuid
for b in range(8):
    records = []
    for i in range(10):
        detail = {"id": f"mi-{b}-{i}-{uuid.uuid4().hex[:8]}", "store": "store-2", "product": f"mi-b{b}", "qty": i + 1}
        body = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "stock.add", "source": "moebi",
                "account": "123456789012", "time": "2026-11-23T10:00:00Z", "region": "us-east-1",
                "resources": [], "detail": detail}
        records.append({"messageId": f"mi-{b}-{i}", "receiptHandle": "x", "body": json.dumps(body),
                        "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                        "eventSource": "aws:sqs", "awsRegion": "us-east-1",
                        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:moebi-stock-add"})
    json.dump({"Records": records}, open(f"{sys.argv[1]}/mi-{b}.json", "w"))
PY
# Each call waits 50 ms in a proxy (benches/counting_proxy.py) on its way to the emulator, as a
# round trip in a region would: an invocation (one TransactWriteItems for its 10 adds, grouped)
# then lasts long enough for the 8 sent at once to overlap, however fast the emulator answers.
python3 -c 'import sys, time; sys.path.insert(0, sys.argv[2]); from counting_proxy import CountingProxy
p = CountingProxy({}, default=sys.argv[1], latency_ms=50).start(); print(p.url, flush=True); time.sleep(3600)' \
  "$MOEBI_EMULATOR_URL" "$PWD/benches" >"$work/mi-proxy.url" 2>"$work/mi-proxy.log" &
mi_proxy=$!
for _ in $(seq 1 100); do [ -s "$work/mi-proxy.url" ] && break; sleep 0.1; done
env AWS_LAMBDA_MAX_CONCURRENCY=4 AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128 AWS_LAMBDA_FUNCTION_NAME=_ \
  AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$mi_port/.rt" AWS_ENDPOINT_URL="$(cat "$work/mi-proxy.url")" AWS_REGION=us-east-1 \
  MOEBI_REGION=us-east-1 MOEBI_TABLE=moebi MOEBI_BUS=moebi \
  "$(bootstrap stock-add)" >"$work/stock-add.mi.log" 2>&1 &
mi_fn=$!
for b in $(seq 0 7); do
  timeout 120 cargo lambda invoke -A 127.0.0.1 -P "$mi_port" -F "$work/mi-$b.json" _ >"$work/mi-$b.out" 2>&1 &
done
wait_status=0
for job in $(jobs -p); do
  case "$job" in "$watch" | "$mi_watch" | "$mi_fn" | "$mi_proxy") ;; *) wait "$job" || wait_status=$? ;; esac
done
kill "$mi_fn" "$mi_watch" "$mi_proxy" 2>/dev/null || true
wait "$mi_fn" "$mi_watch" "$mi_proxy" 2>/dev/null || true
answers=0
for b in $(seq 0 7); do
  [ "$(cat "$work/mi-$b.out")" = '{"batchItemFailures":[]}' ] && answers=$((answers + 1))
done
[ "$wait_status" -eq 0 ] && [ "$answers" -eq 8 ] && pass "8 invocations sent at once, 8 answered with no failure" \
  || fail "managed instances: $answers of 8 answered cleanly: $(cat "$work"/mi-*.out | head -c 600)"
out=$(python3 - "$work/stock-add.mi.log" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{") and '"level"' in l]
starts = [l for l in lines if l.get("fields", {}).get("message") == "started"]
ids = []
for l in lines:
    rid = next((s["request_id"] for s in l.get("spans", []) if "request_id" in s), None)
    if rid and (not ids or ids[-1] != rid):
        ids.append(rid)
distinct = len(set(ids))
# Without concurrency each invocation's lines form one block: as many blocks as invocations.
if len(starts) != 1 or starts[0]["fields"].get("concurrency") != 4:
    sys.exit(f"expected one process started with concurrency 4, got {[s.get('fields') for s in starts]}")
if distinct != 8 or len(ids) == distinct:
    sys.exit(f"{distinct} invocations in {len(ids)} blocks of log lines: they did not overlap")
print(f"one process served {distinct} invocations overlapping ({len(ids)} alternations in its log)")
PY
) && pass "$out" || fail "$out"

echo "lambda-test: effects in the emulator's DynamoDB"
# The moebi-reply answers went to the bus; deliver them as the event source mappings would.
moebi pump --until-idle >/dev/null
check() { local what=$1 want=$2 got; got=$(shift 2; moebi "$@"); grep -qF -- "$want" <<<"$got" && pass "$what" || fail "$what: wanted '$want' in: $got"; }
check "kate got the chat-send batch" "alex: are you there?" inbox kate
check "kate got the good records of the bad batches" "alex: still here" inbox kate
check "alex got the single chat event" "kate: how are you?" inbox alex
check "moebi recorded what it was told" "alex: who is a good dog?" inbox moebi
check "alex got moebi's reply" "moebi: chicken?  (reply to reply-e1)" inbox alex
check "the stock-status batch answered kate" "(reply to status-b1)" inbox kate
check "the stock-status event answered alex" "(reply to status-e1)" inbox alex
check "the front door's message (events/front-door/send.json) reached kate" "alex: hi, through the front door" inbox kate
# nike: the batch (30 + 5), two good records of 1 in each of the 4 bad stock-add batches, the mixed
# batch (10), and store-1's 30 through the front door (events/front-door/add-stock.json: its
# PutEvents on us-west-2's bus, routed by the emulator's rule to the stock-add queue).
check "stock-add shares landed and sum" "nike: 83" stock status nike --as kate
check "the single stock-add event landed" "puma: 7" stock status puma --as alex
for b in $(seq 0 7); do
  check "managed instances: batch $b's 10 adds landed once" "mi-b$b: 55" stock status "mi-b$b" --as kate
done

echo
echo "lambda: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
