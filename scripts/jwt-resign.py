"""Signs a token of MiniStack's Cognito again with its user pool's own key, some claims changed.

    .venv/ministack/bin/python scripts/jwt-resign.py KEY_PEM '{"exp": 1700000000}' <TOKEN

Prints the new token. KEY_PEM is the key MiniStack signs the pool's access tokens with,
STATE_DIR/cognito-pool-keys/<pool id>-access.pem (scripts/ministack.sh gives each emulator a
STATE_DIR of its own). The header (its `kid`) is kept: a token made so is one the pool could
have issued, so an HTTP API that refuses it refuses it for its claims (an expiry in the past),
not for its signature. Run by scripts/emulator-check.py (`refusals`) with MiniStack's Python,
which has the `cryptography` package the Makefile pins.
"""

import base64
import json
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding


def b64decode(part):
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def b64encode(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    key = serialization.load_pem_private_key(open(argv[1], "rb").read(), password=None)
    header, payload, _ = sys.stdin.read().strip().split(".")
    claims = json.loads(b64decode(payload))
    claims.update(json.loads(argv[2]))
    signed = header + "." + b64encode(json.dumps(claims, separators=(",", ":")).encode())
    signature = key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
    print(signed + "." + b64encode(signature))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
