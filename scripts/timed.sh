#!/usr/bin/env bash
# timed.sh FILE NAME COMMAND...: runs COMMAND and appends its wall time to FILE as
# "NAME<tab>seconds<tab>exit status"; it exits as COMMAND did.
# timed.sh --table FILE: prints FILE as the table `make test` ends with; with FILE.start (the
# time the run began, in seconds), also the run's wall time, which is less than the sum of its
# steps where steps ran side by side.
set -uo pipefail
if [ "${1:-}" = --table ]; then
  python3 - "$2" <<'PY'
import os, sys, time
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
width = max([len(r[0]) for r in rows] + [16])
total = sum(float(r[1]) for r in rows)
print(f"\n{'step':<{width}}  {'wall':>8}  status")
for name, secs, status in rows:
    s = float(secs)
    print(f"{name:<{width}}  {int(s // 60):>3}m {s % 60:04.1f}s  {'ok' if status == '0' else 'FAILED (' + status + ')'}")
print(f"{'sum of the steps':<{width}}  {int(total // 60):>3}m {total % 60:04.1f}s")
if os.path.exists(sys.argv[1] + ".start"):
    wall = time.time() - float(open(sys.argv[1] + ".start").read())
    print(f"{'wall time (all)':<{width}}  {int(wall // 60):>3}m {wall % 60:04.1f}s")
PY
  exit 0
fi
file=$1 name=$2
shift 2
start=$(date +%s.%N)
"$@"
status=$?
end=$(date +%s.%N)
printf '%s\t%s\t%s\n' "$name" "$(python3 -c "print(round($end - $start, 1))")" "$status" >>"$file"
exit $status
