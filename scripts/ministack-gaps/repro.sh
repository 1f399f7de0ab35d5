#!/usr/bin/env bash
# Reproduces the two MiniStack 1.5.33 gaps that scripts/ministack-launch.py patches, with the
# AWS CLI only, on a fresh MiniStack of its own (a free loopback port, stopped at the end):
#
#   scripts/ministack-gaps/repro.sh stock     # MiniStack as installed: both gaps show (exit 1)
#   scripts/ministack-gaps/repro.sh patched   # through the launcher: both closed (exit 0)
#
# gap 1, cross-region event-bus target: bus `moebi` in us-west-2 and us-east-1; a rule on
#   us-west-2's bus targets us-east-1's bus (with a RoleArn, as moebi's forwarding rules); a rule
#   on us-east-1's bus targets queue `landed` of us-east-1. One PutEvents in us-west-2 must land
#   in `landed`. Stock: it never does, and MiniStack logs
#   "EventBridge -> Event bus: event bus arn:aws:events:us-east-1:000000000000:event-bus/moebi not found".
# gap 2, EventBridge -> Lambda is not an asynchronous invocation: function `fails` (its bootstrap
#   answers every invocation with an error) with an event invoke config of 2 retries and an
#   on-failure destination, queue `on-failure`; a rule targets the function. After one PutEvents
#   AWS tries 3 times, then puts a record (condition RetriesExhausted) into `on-failure`. Stock:
#   one try, `on-failure` stays empty.
# Needs .venv/ministack (make .venv/ministack/bin/ministack) and .venv/awscli (make .venv/awscli/bin/aws).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
MODE=${1:-stock}
case "$MODE" in stock | patched) ;; *) echo "usage: $0 stock|patched" >&2; exit 2 ;; esac
AWS_CLI="${AWS_CLI:-$ROOT/.venv/awscli/bin/aws}"
# shellcheck source=scripts/ministack.sh
. "$ROOT/scripts/ministack.sh"
WORK="$(mktemp -d -t ministack-gaps.XXXXXX)"
trap 'ministack_stop gaps; rm -rf "$WORK"' EXIT
ministack_start gaps "$WORK" "$MODE"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_PROFILE AWS_SESSION_TOKEN
aws() { "$AWS_CLI" --endpoint-url "$MS_URL_gaps" --output text "$@"; }
ACCOUNT=000000000000
waitfor() { # waitfor SECONDS QUEUE_URL REGION: the first message's body within SECONDS, or nothing
  local deadline=$((SECONDS + $1)) body
  while [ $SECONDS -lt $deadline ]; do
    body=$(aws sqs receive-message --region "$3" --queue-url "$2" --wait-time-seconds 1 --query 'Messages[0].Body')
    [ "$body" != None ] && { echo "$body"; return; }
  done
  return 0
}
gaps=0

echo "--- gap 1: a rule on us-west-2's bus targets us-east-1's bus"
aws events create-event-bus --region us-west-2 --name moebi >/dev/null
aws events create-event-bus --region us-east-1 --name moebi >/dev/null
q=$(aws sqs create-queue --region us-east-1 --queue-name landed --query QueueUrl)
pattern='{"source":["repro"]}'
aws events put-rule --region us-east-1 --event-bus-name moebi --name to-queue --event-pattern "$pattern" >/dev/null
aws events put-targets --region us-east-1 --event-bus-name moebi --rule to-queue \
  --targets "Id=q,Arn=arn:aws:sqs:us-east-1:$ACCOUNT:landed" >/dev/null
aws events put-rule --region us-west-2 --event-bus-name moebi --name forward --event-pattern "$pattern" >/dev/null
aws events put-targets --region us-west-2 --event-bus-name moebi --rule forward \
  --targets "Id=bus,Arn=arn:aws:events:us-east-1:$ACCOUNT:event-bus/moebi,RoleArn=arn:aws:iam::$ACCOUNT:role/forward" >/dev/null
aws events put-events --region us-west-2 --entries '[{"EventBusName":"moebi","Source":"repro","DetailType":"t","Detail":"{\"n\":1}"}]' --query FailedEntryCount
body=$(waitfor 5 "$q" us-east-1)
if [ -n "$body" ]; then echo "closed: us-east-1's queue got $body"; else
  echo "GAP: nothing reached us-east-1's queue; MiniStack logged:"; grep -m1 'not found' "$WORK/gaps.log" || true; gaps=$((gaps + 1)); fi

echo "--- gap 2: a rule targets a function that always fails (2 retries, on-failure queue)"
mkdir -p "$WORK/fn"
cat >"$WORK/fn/bootstrap" <<'PY'
#!/usr/bin/env python3
# Answers every invocation with an error, through the Lambda Runtime API.
import json, os, urllib.request
api = "http://%s/2018-06-01/runtime/invocation/" % os.environ["AWS_LAMBDA_RUNTIME_API"]
while True:
    with urllib.request.urlopen(api + "next") as r:
        rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
        r.read()
    print("attempt", rid, flush=True)
    body = json.dumps({"errorMessage": "asked to fail", "errorType": "Repro"}).encode()
    urllib.request.urlopen(urllib.request.Request(api + rid + "/error", data=body, method="POST")).read()
PY
chmod +x "$WORK/fn/bootstrap"
(cd "$WORK/fn" && zip -q fn.zip bootstrap)
f=$(aws sqs create-queue --region us-west-2 --queue-name on-failure --query QueueUrl)
aws lambda create-function --region us-west-2 --function-name fails --runtime provided.al2023 --handler bootstrap \
  --role "arn:aws:iam::$ACCOUNT:role/fn" --zip-file "fileb://$WORK/fn/fn.zip" --query State >/dev/null
aws lambda put-function-event-invoke-config --region us-west-2 --function-name fails --maximum-retry-attempts 2 \
  --destination-config "{\"OnFailure\":{\"Destination\":\"arn:aws:sqs:us-west-2:$ACCOUNT:on-failure\"}}" >/dev/null
aws events put-rule --region us-west-2 --event-bus-name moebi --name to-fn --event-pattern '{"source":["repro-fn"]}' >/dev/null
aws events put-targets --region us-west-2 --event-bus-name moebi --rule to-fn \
  --targets "Id=fn,Arn=arn:aws:lambda:us-west-2:$ACCOUNT:function:fails" >/dev/null
aws events put-events --region us-west-2 --entries '[{"EventBusName":"moebi","Source":"repro-fn","DetailType":"t","Detail":"{\"n\":2}"}]' --query FailedEntryCount
body=$(waitfor 12 "$f" us-west-2)
tries=$(aws logs filter-log-events --region us-west-2 --log-group-name /aws/lambda/fails --filter-pattern attempt --query 'length(events)' 2>/dev/null || echo '?')
if [ -n "$body" ]; then echo "closed: $tries tries, then on-failure got ${body:0:160}..."; else
  echo "GAP: $tries try(ies), on-failure queue empty after 12 s"; gaps=$((gaps + 1)); fi

echo "ministack-gaps ($MODE): $gaps of 2 gaps show"
[ "$gaps" -eq 0 ]
