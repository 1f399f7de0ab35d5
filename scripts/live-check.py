#!/usr/bin/env python3
"""The rehearsal's live delivery (scripts/deploy-emulator.sh, step "live"): sockets opened at the
WebSocket APIs that infra/ made on MiniStack, with the users' Cognito tokens, and what the
bootstraps push to them.

  live-check.py URL OUTPUTS_JSON FRONT_JSON STATE_DIR MINISTACK_PYTHON [--messages N]

(MINISTACK_PYTHON has `cryptography`, which scripts/jwt-resign.py signs an expired token with.)

1. What $connect refuses: no token (401, API Gateway), an expired one, another pool's, a
   store's (403: the sockets function's REQUEST authorizer denies); a valid one connects.
2. Pushed across regions: kate on her home region's socket gets alex's message; alex, on a
   socket in a region that is NOT his home, gets kate's answer and moebi's `chicken?` (each
   entry lands in the recipient's home region and reaches the other regions' streams through
   the global table).
3. Measured over N messages (default 50), alex to kate, one every 100 ms: push latency, from
   the API's 202 to kate's socket, p50 and p99; and DynamoDB reads per delivered message, pushed
   (the push function's connection reads, from its log lines, and one catch-up read per
   connection) against polled (a client reading its inbox every 500 ms, `moebi chat`'s old way,
   over the same minutes).
Prints what it saw; exits 1 naming the first thing that did not hold.
"""
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import importlib.util

spec = importlib.util.spec_from_file_location("check", os.path.join(os.path.dirname(os.path.abspath(__file__)), "emulator-check.py"))
check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check)

failures = []


def fail(message):
    failures.append(message)
    print("  FAILED: " + message)


class Socket:
    """One client's socket: a thread keeps every pushed frame with the time it arrived."""

    def __init__(self, url, token, who, where):
        self.who, self.where = who, where
        self.frames = []  # (arrived, frame)
        self.ws = connect(url + "?token=" + token, open_timeout=15, close_timeout=2)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for message in self.ws:
                self.frames.append((time.time(), json.loads(message)))
        except Exception:
            pass

    def entries(self):
        return [(t, f["entry"]) for t, f in self.frames if f.get("kind") == "inbox" and f.get("owner") == self.who]

    def wait_for(self, what, probe, seconds=20):
        deadline = time.time() + seconds
        while time.time() < deadline:
            got = probe(self.entries())
            if got:
                return got
            time.sleep(0.05)
        fail("%s's socket in %s: no %s within %d s (frames: %s)" % (self.who, self.where, what, seconds, [f for _, f in self.frames][-5:]))
        return None

    def close(self):
        self.ws.close()


def refused(url, token, want, label):
    try:
        ws = connect(url + ("?token=" + token if token is not None else ""), open_timeout=15)
        ws.close()
        fail("%s: the socket opened, want HTTP %d" % (label, want))
    except InvalidStatus as e:
        status = e.response.status_code
        print("  %-58s refused: HTTP %d" % (label, status))
        if status != want:
            fail("%s: HTTP %d, want %d" % (label, status, want))


def post(api, token, path, body):
    request = urllib.request.Request(api + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"authorization": "Bearer " + token, "content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as r:
        return r.status, json.loads(r.read() or b"{}")


def get(api, token, path):
    request = urllib.request.Request(api + path, headers={"authorization": "Bearer " + token})
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.loads(r.read() or b"{}")


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(p / 100 * len(s) + 0.5)) - 1))]


def main():
    url, outputs_file, front_file, state_dir, python = sys.argv[1:6]
    resign = [python, os.path.join(os.path.dirname(os.path.abspath(__file__)), "jwt-resign.py")]
    n = int(sys.argv[sys.argv.index("--messages") + 1]) if "--messages" in sys.argv else 50
    o, front = json.load(open(outputs_file)), json.load(open(front_file))
    o = {k: v.get("value", v) if isinstance(v, dict) and "value" in v else v for k, v in o.items()}
    sockets, users = o["socket_urls"], front["users"]
    session = lambda u: json.load(open(os.path.join(front["sessions"], u + ".json")))
    token = lambda u: session(u)["access_token"]
    api = lambda u: users[u]["api"]
    home = lambda u: users[u]["home"]
    away = next(r for r in sockets if r != home("alex") and r != home("kate"))
    print("  WebSocket APIs: " + ", ".join("%s %s" % kv for kv in sorted(sockets.items())))

    # 1. What $connect refuses.
    pool, region = front["user_pool_id"], front["region"]
    now_s = int(time.time())
    key = os.path.join(state_dir, "cognito-pool-keys", pool + "-access.pem")
    r = subprocess.run([*resign, key, json.dumps({"iat": now_s - 7200, "auth_time": now_s - 7200, "exp": now_s - 3600})],
                       input=token("alex"), capture_output=True, text=True)
    expired = r.stdout.strip()
    other = check.aws(url, region, "cognito-idp", "create-user-pool", "--pool-name", "moebi-rehearsal-other-pool") or {}
    other_pool = other.get("UserPool", {}).get("Id")
    client = (check.aws(url, region, "cognito-idp", "create-user-pool-client", "--user-pool-id", str(other_pool), "--client-name", "other",
                        "--explicit-auth-flows", "ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH") or {}).get("UserPoolClient", {}).get("ClientId")
    password = users["alex"]["password"]
    for args in (("admin-create-user", "--message-action", "SUPPRESS"), ("admin-set-user-password", "--password=" + password, "--permanent")):
        check.aws(url, region, "cognito-idp", *args, "--user-pool-id", str(other_pool), "--username", "alex")
    auth = check.aws(url, region, "cognito-idp", "initiate-auth", "--client-id", str(client), "--auth-flow", "USER_PASSWORD_AUTH",
                     "--auth-parameters", json.dumps({"USERNAME": "alex", "PASSWORD": password})) or {}
    foreign = auth.get("AuthenticationResult", {}).get("AccessToken", "")
    print("  another user pool %s with a user alex, signed in (app client %s)" % (other_pool, client))
    at = sockets[home("alex")]
    refused(at, None, 401, "no token (API Gateway: identity source missing)")
    refused(at, expired, 403, "alex's token, expired (exp 1 h ago, the pool's key)")
    refused(at, foreign or "x", 403, "alex's token of another user pool")
    refused(at, token("store-1"), 403, "store-1's token (stores do not chat)")

    # 2. Pushed, across regions.
    kate = Socket(sockets[home("kate")], token("kate"), "kate", home("kate"))
    alex = Socket(sockets[away], token("alex"), "alex", away)
    print("  connected: kate at her home %s, alex at %s (his home is %s)" % (home("kate"), away, home("alex")))
    time.sleep(0.5)
    stamp = str(int(time.time() * 1000))
    _, sent = post(api("alex"), token("alex"), "/messages", {"to": "kate", "text": "live " + stamp})
    got = kate.wait_for("alex's message", lambda es: [e for _, e in es if e["id"] == sent["id"]])
    if got:
        print("  kate's socket (%s): %s: %s" % (home("kate"), got[0]["from"], got[0]["text"]))
    _, answer = post(api("kate"), token("kate"), "/messages", {"to": "alex", "text": "got it " + stamp})
    got = alex.wait_for("kate's answer", lambda es: [e for _, e in es if e["id"] == answer["id"]])
    if got:
        print("  alex's socket (%s, not his home): %s: %s" % (away, got[0]["from"], got[0]["text"]))
    _, woof = post(api("alex"), token("alex"), "/messages", {"to": "moebi", "text": "who is a good dog? " + stamp})
    got = alex.wait_for("moebi's chicken?", lambda es: [e for _, e in es if e.get("in_reply_to") == woof["id"]])
    if got:
        print("  alex's socket (%s): %s: %s (reply to %s)" % (away, got[0]["from"], got[0]["text"], got[0]["in_reply_to"]))
        if got[0]["text"] != "chicken?":
            fail("moebi answered %r" % got[0]["text"])
    alex.close()

    # 3. Measured: n messages, alex to kate, pushed to kate's socket; a poller beside.
    polls, polled, stop = [0], set(), threading.Event()
    last = [None]

    def poller():
        while not stop.is_set():
            path = "/inbox" + ("?after=" + last[0] if last[0] else "")
            try:
                entries = get(api("kate"), token("kate"), path).get("entries", [])
            except Exception:
                entries = []
            polls[0] += 1
            for e in entries:
                polled.add(e["id"])
                last[0] = e["id"]
            stop.wait(0.5)

    last[0] = sent["id"]
    started = time.time()
    poll_thread = threading.Thread(target=poller, daemon=True)
    poll_thread.start()
    acked = {}
    for i in range(n):
        _, body = post(api("alex"), token("alex"), "/messages", {"to": "kate", "text": "measured %d %s" % (i, stamp)})
        acked[body["id"]] = time.time()
        time.sleep(0.1)
    kate.wait_for("all %d measured messages" % n, lambda es: len({e["id"] for _, e in es} & set(acked)) == n, seconds=60)
    first = {}
    for t, e in kate.entries():
        first.setdefault(e["id"], t)
    # The poller runs until it has seen them all too (or 30 s).
    deadline = time.time() + 30
    while time.time() < deadline and not set(acked) <= polled:
        time.sleep(0.1)
    stop.set()
    poll_thread.join()
    window = time.time() - started
    kate.close()
    latencies = [(first[i] - acked[i]) * 1000 for i in acked if i in first]
    repeats = len([1 for _, e in kate.entries() if e["id"] in acked]) - len(latencies)
    if len(latencies) == n:
        print("  push latency over %d messages (the API's 202 to kate's socket, %s to %s): p50 %.0f ms, p99 %.0f ms, max %.0f ms; %d repeated"
              % (n, home("alex"), home("kate"), statistics.median(latencies), percentile(latencies, 99), max(latencies), repeats))
    push_reads = push_log_reads(url, home("kate"), started)
    connects = 1
    pushed_reads = (push_reads + connects) / max(1, len(latencies))
    polled_reads = polls[0] / max(1, len(polled & set(acked)))
    print("  DynamoDB reads per delivered message: pushed %.2f (%d connection reads by push, %d catch-up read, %d messages);"
          " polled every 500 ms %.2f (%d reads over %.0f s for %d messages)"
          % (pushed_reads, push_reads, connects, len(latencies), polled_reads, polls[0], window, len(polled & set(acked))))
    print("  idle, per client and hour: polled every 500 ms, 7200 reads; pushed, 0 reads (and 12 heartbeats, which read nothing)")
    cli_chat(url, front, o, stamp, post, api, token)
    if failures:
        print("live: %d failed" % len(failures))
        sys.exit(1)


def cli_chat(url, front, o, stamp, post, api, token):
    """`moebi chat kate` over the API: live; its socket deleted (DeleteConnection) while alex
    writes; it reconnects and catches up; each message shown exactly once."""
    home = front["users"]["kate"]["home"]
    env = dict(os.environ, MOEBI_HEARTBEAT_SECONDS="2")
    chat = subprocess.Popen([front["moebi"], "--sessions", front["sessions"], "--engine", "api", "chat", "kate"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out, err = [], []
    for stream, into in ((chat.stdout, out), (chat.stderr, err)):
        threading.Thread(target=lambda s=stream, i=into: [i.append(l.rstrip("\n")) for l in s], daemon=True).start()

    def until(what, probe, seconds=30):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if probe():
                return True
            time.sleep(0.05)
        fail("moebi chat kate: %s within %d s; stdout %s; stderr %s" % (what, seconds, out[-5:], err[-5:]))
        return False

    texts = ["cli %d %s" % (i, stamp) for i in range(4)]
    shown = lambda t: len([l for l in out if l.endswith("alex: " + t)])
    try:
        if not until("the live banner", lambda: any("live;" in l for l in out)):
            return
        post(api("alex"), token("alex"), "/messages", {"to": "kate", "text": texts[0]})
        until("the first message, pushed", lambda: shown(texts[0]))
        time.sleep(5)  # two heartbeats go out meanwhile
        items = (check.aws(url, home, "dynamodb", "query", "--table-name", "moebi-connections", "--key-condition-expression",
                           "participant = :p", "--expression-attribute-values", json.dumps({":p": {"S": "kate"}})) or {}).get("Items", [])
        management = o["wiring"][home]["live"]["management_url"]
        for item in items:
            check.aws(url, home, "apigatewaymanagementapi", "delete-connection", "--connection-id", item["connection"]["S"],
                      "--endpoint-url", management)
        post(api("alex"), token("alex"), "/messages", {"to": "kate", "text": texts[1]})
        post(api("alex"), token("alex"), "/messages", {"to": "kate", "text": texts[2]})
        until("a reconnect", lambda: any("reconnected" in l for l in err))
        post(api("alex"), token("alex"), "/messages", {"to": "kate", "text": texts[3]})
        until("every message", lambda: all(shown(t) for t in texts))
        time.sleep(1.5)
        counts = [shown(t) for t in texts]
        print("  moebi chat kate (MOEBI_HEARTBEAT_SECONDS=2): its %d socket(s) deleted (DeleteConnection) while alex wrote twice; "
              "%s; each of the 4 messages shown %s time(s)" % (len(items), next((l for l in err if "reconnected" in l), "no reconnect"), counts))
        if counts != [1, 1, 1, 1] or not items:
            fail("moebi chat kate across a forced reconnect: shown %s (want once each), %d connections deleted" % (counts, len(items)))
    finally:
        chat.stdin.close()
        try:
            chat.wait(timeout=10)
        except subprocess.TimeoutExpired:
            chat.kill()


def push_log_reads(url, region, since):
    """The connection reads the push function counted (its `pushed` log lines) since `since`."""
    events = (check.aws(url, region, "logs", "filter-log-events", "--log-group-name", "/aws/lambda/moebi-push",
                        "--start-time", str(int(since * 1000))) or {}).get("events", [])
    total = 0
    for _, line in check.json_lines([(e.get("logStreamName"), e["message"]) for e in events]):
        fields = line.get("fields", line)
        if fields.get("message") == "pushed":
            total += int(fields.get("reads", 0))
    return total


if __name__ == "__main__":
    main()
