#!/usr/bin/env bash
# Runs a command with the AWS API emulator (moto's server mode) on a free loopback port, and
# stops the emulator afterwards, also when the command fails.
#   scripts/with-emulator.sh MOTO_SERVER -- COMMAND...
# The command sees MOEBI_EMULATOR_URL (and AWS_* test credentials).
set -euo pipefail
server=$1; shift
[ "${1:-}" = "--" ] && shift
[ -x "$server" ] || { echo "with-emulator: $server is missing (make installs it)" >&2; exit 1; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp -t moto.XXXXXX.log)
"$server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
pid=$!
stop() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
trap stop EXIT

url="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  if python3 -c "import urllib.request,sys; urllib.request.urlopen('$url/moto-api/', timeout=1)" 2>/dev/null; then
    break
  fi
  kill -0 "$pid" 2>/dev/null || { echo "with-emulator: the emulator died:" >&2; cat "$log" >&2; exit 1; }
  sleep 0.2
done
echo "emulator: moto on $url (log: $log)"

export MOEBI_EMULATOR_URL=$url
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_DEFAULT_REGION=us-east-1
unset AWS_PROFILE
"$@"
