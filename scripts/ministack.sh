# shellcheck shell=bash
# Sourced: starts and stops MiniStack (the AWS API emulator of `make deploy-emulator`) on a free
# loopback port. Used by scripts/deploy-emulator.sh and scripts/ministack-gaps/repro.sh.
#
#   ministack_start NAME DIR [stock]   sets MS_URL_<NAME>, MS_PID_<NAME>, MS_STATE_<NAME> (its
#                                      STATE_DIR: Cognito's signing keys); log in DIR/NAME.log
#   ministack_stop NAME                kills the process group (MiniStack and every bootstrap
#                                      it started), removes the code it extracted
#
# MiniStack runs in a clean environment (env -i): the Lambda bootstraps it starts inherit its
# whole environment (`proc_env = dict(os.environ)` in MiniStack's lambda runtime), so nothing of
# the caller's (MOEBI_TOPOLOGY, AWS_PROFILE, credentials...) may leak into the functions. What it
# gets: PATH, HOME, TMPDIR (where it extracts the functions' code:
# $TMPDIR/ministack-provided-code-<port>), BIND_HOST and GATEWAY_PORT (where it listens),
# AWS_ENDPOINT_URL (MiniStack hands it to each `provided.*` bootstrap, which then calls MiniStack,
# not AWS; without it in MiniStack's own environment the functions would call real AWS),
# RUST_LOG=info (Lambda's logging_config is not handed over as AWS_LAMBDA_LOG_LEVEL) and
# STATE_DIR=DIR/state-NAME (where it keeps the Cognito signing keys, shared by every MiniStack of
# the machine at its default /tmp/ministack-state: each emulator gets its own, removed with DIR).
# Without `stock`, the launcher scripts/ministack-launch.py patches the two gaps it documents.

MINISTACK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MINISTACK_VENV="${MINISTACK_VENV:-$MINISTACK_ROOT/.venv/ministack}"

ministack_start() {
  local name=$1 dir=$2 mode=${3:-patched} port url pid cmd
  [ -x "$MINISTACK_VENV/bin/python" ] || {
    echo "ministack: $MINISTACK_VENV is missing (make $MINISTACK_VENV/bin/ministack installs it)" >&2
    return 1
  }
  if [ "$mode" = stock ]; then cmd=("$MINISTACK_VENV/bin/ministack"); else cmd=("$MINISTACK_VENV/bin/python" "$MINISTACK_ROOT/scripts/ministack-launch.py"); fi
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  url="http://127.0.0.1:$port"
  mkdir -p "$dir/tmp-$name" "$dir/state-$name"
  env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$HOME" TMPDIR="$dir/tmp-$name" STATE_DIR="$dir/state-$name" \
    BIND_HOST=127.0.0.1 GATEWAY_PORT="$port" AWS_ENDPOINT_URL="$url" RUST_LOG=info \
    setsid "${cmd[@]}" >"$dir/$name.log" 2>&1 </dev/null &
  pid=$!
  printf -v "MS_URL_$name" '%s' "$url"
  printf -v "MS_PID_$name" '%s' "$pid"
  printf -v "MS_CODE_$name" '%s' "$dir/tmp-$name/ministack-provided-code-$port"
  printf -v "MS_STATE_$name" '%s' "$dir/state-$name"
  local i
  for i in $(seq 1 200); do
    if curl -sf "$url/_ministack/health" >/dev/null 2>&1; then
      echo "ministack ($mode) $name: $url, pid $pid (log: $dir/$name.log)"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "ministack $name did not answer on $url:" >&2
  tail -n 30 "$dir/$name.log" >&2
  return 1
}

ministack_stop() {
  local name=$1 pid_var="MS_PID_$1" code_var="MS_CODE_$1"
  local pid=${!pid_var:-}
  [ -n "$pid" ] || return 0
  # setsid made MiniStack a process group leader; the bootstraps are in its group.
  kill -- -"$pid" 2>/dev/null || true
  local i
  for i in $(seq 1 50); do kill -0 -- -"$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- -"$pid" 2>/dev/null || true
  rm -rf "${!code_var:-/nonexistent}"
  printf -v "MS_PID_$name" '%s' ""
}
