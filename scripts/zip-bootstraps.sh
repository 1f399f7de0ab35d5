#!/usr/bin/env bash
# zip-bootstraps.sh BIN_DIR OUT_DIR FUNCTION...: zips each BIN_DIR/<function> binary as
# OUT_DIR/<function>/bootstrap.zip holding one executable `bootstrap`, as cargo lambda does
# (`make test` deploys the dev build's bootstraps to MiniStack this way, without another build).
set -euo pipefail
bin=$1 out=$2
shift 2
python3 - "$bin" "$out" "$@" <<'PY'
import os, sys, zipfile
bin_dir, out, functions = sys.argv[1], sys.argv[2], sys.argv[3:]
for f in functions:
    src = os.path.join(bin_dir, f)
    dst = os.path.join(out, f, "bootstrap.zip")
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if os.path.exists(dst) and os.path.getmtime(dst) >= os.path.getmtime(src):
        continue  # up to date
    info = zipfile.ZipInfo("bootstrap", zipfile.ZipInfo.from_file(src).date_time)
    info.external_attr = 0o755 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(dst + ".tmp", "w") as z, open(src, "rb") as b:
        z.writestr(info, b.read())
    os.replace(dst + ".tmp", dst)
    print("zipped %s -> %s" % (src, dst))
PY
