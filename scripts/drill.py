#!/usr/bin/env python3
"""make drill: lose a region under `moebi load`, bring it back, and audit what happened.

  drill.py REHEARSAL_JSON OUT_DIR [--down REGION] [--rate N] [--duration S] [--down-at S] [--up-at S]
           [--evacuated-for S] [--seed N]

On the rehearsal (`make deploy-emulator KEEP=1 UNTIL=users` left its MiniStack running, described
in REHEARSAL_JSON). Run by the AWS CLI's Python; MOEBI names the moebi CLI, TERRAFORM terraform.

The timeline, in seconds from the start of the load (rate N events/s, alex, kate and the stores
sending through their home region's HTTP API, each request with its client-chosen id):
- down-at: REGION goes down. Its API stops answering clients (each region's API is reached
  through a local TCP proxy here, and REGION's proxy closes: connections are refused), and its
  event source mappings are disabled (its functions stop taking from its queues). Its buses
  still take what other regions forward, into its queues, as EventBridge would keep retrying a
  region that is down. The clients of REGION's residents fail over to the next region's API.
- the evacuation: `terraform apply -var evacuated=["REGION"]` on the surviving regions' modules
  (what an operator runs on AWS; README, "Losing a region"): the events of REGION's residents
  go to its standby, the next region, as well as home. Then REGION's rules are disabled (from
  then on every event for its residents reaches the standby too).
- meanwhile kate, a resident of REGION (when REGION is us-east-1), sends and reads through the
  standby's API, and asks moebi, whose `chicken?` lands in her inbox there.
- up-at (and at least --evacuated-for seconds after the evacuation): REGION comes back: its rules and mappings enabled, its API answering; the evacuation
  ends (`-var evacuated=[]`); its queues drain.
After the load: the audit. Sent, acknowledged, applied once, lost and doubled (moebi load, from
the stamps of every region; the stock of every region against the adds applied), and every
inbox of every region scanned for an id held twice; REGION's queues drained; the DLQs' depths.
Prints the outage's start and end, the time to fail over (a request of a resident of REGION
answered through another region; the evacuation), the p99 before, during and after,
and the plot of latency over time with the outage marked (OUT_DIR/load/latency-over-time.png).
Exits 1 naming what did not hold.

What the emulator cannot show: MiniStack replicates the global table inside each PutItem (the
replica is written before the call returns), so replication cannot be paused or lag; on AWS the
FIS experiment template in infra/ pauses it (aws:dynamodb:global-table-pause-replication).
"""
import argparse
import asyncio
import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

from awscli.clidriver import create_clidriver

DRIVER = create_clidriver()
BUS = "moebi"
TABLE = "moebi"
failures = []


def fail(message):
    failures.append(message)
    print("  FAILED: " + message, flush=True)


def say(message):
    print(message, flush=True)


def aws(endpoint, region, *args):
    """One AWS CLI command, in process; answers its JSON (None, and a failure, if it failed)."""
    argv = (["--endpoint-url", endpoint] if endpoint else []) + ["--region", region, "--output", "json", *args]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = DRIVER.main(argv)
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 2
    if rc != 0:
        fail("aws %s: exit %s: %s" % (" ".join(args), rc, err.getvalue().strip()))
        return None
    return json.loads(out.getvalue() or "{}")


class Proxy:
    """A TCP proxy on a loopback port in front of one region's API, which can stop answering
    (connections refused, those open reset) and answer again, on the same port."""

    def __init__(self, loop, target_host, target_port):
        self.loop, self.target = loop, (target_host, target_port)
        self.port = free_port()
        self.server, self.open = None, set()

    async def _pipe(self, reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except Exception:
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _client(self, reader, writer):
        self.open.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.open.add(up_writer)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self.open.discard(writer)
        self.open.discard(up_writer)

    async def _start(self):
        self.server = await asyncio.start_server(self._client, "127.0.0.1", self.port, reuse_address=True)

    async def _stop(self):
        self.server.close()
        for w in list(self.open):
            with contextlib.suppress(Exception):
                w.transport.abort()
        self.open.clear()
        await self.server.wait_closed()

    def up(self):
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    def down(self):
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(10)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def now_ms():
    return time.time() * 1000.0


class Drill:
    def __init__(self, args):
        self.args = args
        self.kept = json.load(open(args.rehearsal))
        self.endpoint = self.kept["ministack"]["url"]
        tf = self.kept["terraform"]
        self.topology = json.load(open(tf["vars"]["topology_file"]))
        self.regions = self.topology["regions"]
        self.down = args.down
        if self.down not in self.regions:
            raise SystemExit("drill: --down %s is not a region of the topology (%s)" % (self.down, ", ".join(self.regions)))
        self.standby = self.regions[(self.regions.index(self.down) + 1) % len(self.regions)]
        self.out = os.path.abspath(args.out)
        self.moebi = os.environ.get("MOEBI") or self.kept["moebi"]
        self.marks = {}
        # The emulator's test credentials, for the AWS CLI, Terraform and moebi's SDK clients.
        for k, v in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_EC2_METADATA_DISABLED", "true"),
                     ("AWS_CONFIG_FILE", "/dev/null"), ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")):
            os.environ[k] = v
        for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            os.environ.pop(k, None)

    # --- the clients' way in: a proxy per region's API, and sessions that go through them ---
    def proxies(self):
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.proxy, self.via = {}, {}
        for region, api in self.kept["apis"].items():
            u = urllib.parse.urlparse(api)
            p = Proxy(self.loop, u.hostname, u.port)
            p.up()
            self.proxy[region] = p
            self.via[api.rstrip("/")] = "%s://127.0.0.1:%d%s" % (u.scheme, p.port, u.path.rstrip("/"))
        self.sessions = os.path.join(self.out, "sessions")
        shutil.rmtree(self.sessions, ignore_errors=True)
        os.makedirs(self.sessions, mode=0o700)
        for name in os.listdir(self.kept["sessions"]):
            if not name.endswith(".json"):
                continue
            s = json.load(open(os.path.join(self.kept["sessions"], name)))
            s["api"] = self.via[s["api"].rstrip("/")]
            s["failover"] = [self.via[a.rstrip("/")] for a in s.get("failover", [])]
            if not s["failover"]:
                fail("%s's session has no failover API: sign in again with moebi login --failover" % s["user"])
            path = os.path.join(self.sessions, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as w:
                json.dump(s, w)
        say("  each region's API behind a proxy: " + ", ".join("%s :%d" % (r, p.port) for r, p in self.proxy.items()))

    def cli(self, *args, timeout=60):
        argv = [self.moebi, "--state", os.path.join(self.out, "cli-state"), "--sessions", self.sessions, "--engine", "api", *args]
        env = dict(os.environ, MOEBI_API_TIMEOUT_MS="3000", RUST_LOG="warn")
        return subprocess.run(argv, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=timeout)

    # --- what takes a region down and brings it back ---
    def mappings(self, enabled):
        got = aws(self.endpoint, self.down, "lambda", "list-event-source-mappings") or {}
        changed = []
        for m in got.get("EventSourceMappings", []):
            flag = "--enabled" if enabled else "--no-enabled"
            if aws(self.endpoint, self.down, "lambda", "update-event-source-mapping", "--uuid", m["UUID"], flag) is not None:
                changed.append(m["FunctionArn"].split(":")[-1])
        return changed

    def rules(self, enabled):
        got = aws(self.endpoint, self.down, "events", "list-rules", "--event-bus-name", BUS) or {}
        names = [r["Name"] for r in got.get("Rules", [])]
        for name in names:
            aws(self.endpoint, self.down, "events", "enable-rule" if enabled else "disable-rule", "--name", name, "--event-bus-name", BUS)
        return names

    def evacuate(self, evacuated):
        """terraform apply of the surviving regions' modules with var.evacuated; answers seconds."""
        tf = self.kept["terraform"]
        env = dict(os.environ, TF_DATA_DIR=tf["data_dir"], TF_IN_AUTOMATION="1", TF_INPUT="0", CHECKPOINT_DISABLE="1",
                   AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_REGION=self.regions[0])
        if tf.get("cli_config"):
            env["TF_CLI_CONFIG_FILE"] = tf["cli_config"]
        targets = ["-target=module.region_%s" % r.replace("-", "_") for r in self.regions if r != self.down]
        variables = ["-var=%s=%s" % kv for kv in tf["vars"].items()]
        variables.append("-var=evacuated=%s" % json.dumps(evacuated))
        argv = [os.environ.get("TERRAFORM", "terraform"), "-chdir=" + self.args.infra, "apply", "-auto-approve", "-input=false",
                "-no-color", "-refresh=false", "-parallelism=30", "-state=" + tf["state"], *targets, *variables]
        started = time.time()
        log = os.path.join(self.out, "evacuate-%s.log" % ("-".join(evacuated) or "none"))
        with open(log, "w") as w:
            r = subprocess.run(argv, stdout=w, stderr=subprocess.STDOUT, env=env, timeout=600)
        took = time.time() - started
        summary = [line for line in open(log) if line.startswith("Apply complete")]
        if r.returncode:
            fail("terraform apply -var evacuated=%s failed (%s)" % (json.dumps(evacuated), log))
        else:
            say("  terraform apply -var evacuated=%s on %s: %s (%.1f s)"
                % (json.dumps(evacuated), ", ".join(t.split(".")[1] for t in targets), summary[0].strip() if summary else "?", took))
        return took

    # --- a resident of the region that is down, through another region ---
    def resident(self):
        t = self.topology
        residents = [p["name"] for p in t["participants"] if p["home"] == self.down]
        others = [p["name"] for p in t["participants"] if p["home"] != self.down]
        bots = [b["name"] for b in t.get("bots", [])]
        if not residents or not others:
            say("  (no participant lives in %s, or none elsewhere: no resident sends through another region)" % self.down)
            return
        me, them = residents[0], others[0]
        said = "drill %d: from %s while %s is down" % (int(time.time()), me, self.down)
        took = time.time()
        r = self.cli("send", me, them, said)
        self.marks["client_failover_s"] = time.time() - took
        if r.returncode:
            fail("%s could not send through another region: %s" % (me, (r.stderr or r.stdout).strip()))
            return
        through = "another region" if "failed over" in r.stderr else "?"
        say("  %s (home %s, down) sent to %s: %s [through %s]" % (me, self.down, them, r.stdout.strip(), through))
        answer = "drill %d: to %s while %s is down" % (int(time.time()), me, self.down)
        r = self.cli("send", them, me, answer)
        if r.returncode:
            fail("%s could not write to %s: %s" % (them, me, (r.stderr or r.stdout).strip()))
            return
        if bots:
            self.cli("send", me, bots[0], "are you there?")
        deadline, seen = time.time() + 60, []
        while time.time() < deadline:
            r = self.cli("inbox", me, "--json")
            if r.returncode == 0:
                entries = [json.loads(line) for line in r.stdout.splitlines() if line.strip().startswith("{")]
                seen = [e for e in entries if e.get("text") == answer]
                chicken = [e for e in entries if bots and e.get("from") == bots[0] and e.get("sent_at", "") >= self.marks["down_iso"]]
                if seen and (chicken or not bots):
                    say("  %s read her inbox through another region: %s's message%s" % (me, them, " and %s's answer %r" % (bots[0], chicken[-1]["text"]) if bots else ""))
                    self.marks["resident_read"] = True
                    return
            time.sleep(1)
        fail("%s did not read %s's message%s through another region within 60 s (last: %s)"
             % (me, them, " nor moebi's answer" if bots else "", (r.stderr or r.stdout).strip()[-300:]))

    # --- the audit ---
    def queues_drained(self):
        deadline = time.time() + 120
        while time.time() < deadline:
            left = {}
            urls = (aws(self.endpoint, self.down, "sqs", "list-queues") or {}).get("QueueUrls", [])
            for url in urls:
                if url.endswith("-dlq"):
                    continue
                a = (aws(self.endpoint, self.down, "sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names", "All") or {}).get("Attributes", {})
                n = int(a.get("ApproximateNumberOfMessages", 0)) + int(a.get("ApproximateNumberOfMessagesNotVisible", 0))
                if n:
                    left[url.rsplit("/", 1)[-1]] = n
            if not left:
                say("  %s's queues drained after it came back" % self.down)
                return
            time.sleep(2)
        fail("%s's queues still hold %s two minutes after it came back" % (self.down, left))

    def dead_letters(self):
        held = {}
        for region in self.regions:
            for url in (aws(self.endpoint, region, "sqs", "list-queues") or {}).get("QueueUrls", []):
                if url.endswith("-dlq"):
                    a = (aws(self.endpoint, region, "sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names", "ApproximateNumberOfMessages") or {}).get("Attributes", {})
                    if int(a.get("ApproximateNumberOfMessages", 0)):
                        held["%s %s" % (region, url.rsplit("/", 1)[-1])] = int(a["ApproximateNumberOfMessages"])
        say("  dead letters: %s" % (", ".join("%s: %d" % kv for kv in sorted(held.items())) or "none in any region"))
        return held

    def doubled_entries(self):
        owners = [p["name"] for p in self.topology["participants"]] + [b["name"] for b in self.topology.get("bots", [])]
        doubled, scanned = 0, 0
        for region in self.regions:
            for owner in owners:
                ids, start = {}, None
                while True:
                    args = ["dynamodb", "query", "--table-name", TABLE, "--key-condition-expression", "pk = :pk",
                            "--expression-attribute-values", json.dumps({":pk": {"S": "inbox#" + owner}}), "--consistent-read"]
                    if start:
                        args += ["--exclusive-start-key", json.dumps(start)]
                    page = aws(self.endpoint, region, *args) or {}
                    for item in page.get("Items", []):
                        i = item.get("id", {}).get("S")
                        ids[i] = ids.get(i, 0) + 1
                    start = page.get("LastEvaluatedKey")
                    if not start:
                        break
                scanned += sum(ids.values())
                for i, n in ids.items():
                    if n > 1:
                        doubled += n - 1
                        fail("%s's inbox in %s holds %s %d times" % (owner, region, i, n))
        say("  inboxes scanned in every region: %d entries, %d held twice" % (scanned, doubled))
        return doubled

    # --- the whole drill ---
    def run(self):
        a = self.args
        os.makedirs(self.out, exist_ok=True)
        say("drill: %s goes down %d s into a load of %s events/s for %d s, and comes back at %d s; its standby is %s"
            % (self.down, a.down_at, a.rate, a.duration, a.up_at, self.standby))
        self.proxies()
        warm = self.cli("load", "--endpoint-url", self.endpoint, "--rate", "5", "--duration", "3s", "--out", os.path.join(self.out, "warm-up"), timeout=300)
        if warm.returncode:
            fail("the warm-up load failed: %s" % (warm.stderr or warm.stdout)[-800:])
            return self.finish()
        outage_file = os.path.join(self.out, "outage.json")
        with contextlib.suppress(FileNotFoundError):
            os.remove(outage_file)
        argv = [self.moebi, "--state", os.path.join(self.out, "cli-state"), "--sessions", self.sessions, "--engine", "api",
                "--endpoint-url", self.endpoint, "load", "--rate", str(a.rate), "--duration", "%ds" % a.duration,
                "--settle", "180s", "--out", os.path.join(self.out, "load"), "--outage", outage_file]
        if a.seed is not None:
            argv += ["--seed", str(a.seed)]
        log = open(os.path.join(self.out, "load.log"), "w")
        env = dict(os.environ, MOEBI_API_TIMEOUT_MS="3000")
        started = time.time()
        load = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)
        say("  moebi load started (log %s)" % log.name)

        time.sleep(max(0, started + a.down_at - time.time()))
        self.marks["down_ms"] = now_ms()
        self.marks["down_iso"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        self.proxy[self.down].down()
        stopped = self.mappings(False)
        say("  %.1f s: %s DOWN: its API refuses connections; event source mappings disabled (%s)"
            % (time.time() - started, self.down, ", ".join(stopped) or "none"))
        took = self.evacuate([self.down])
        self.marks["evacuated_ms"] = now_ms()
        disabled = self.rules(False)
        say("  %.1f s: %s evacuated to %s in %.1f s; its %d rules disabled"
            % (time.time() - started, self.down, self.standby, took, len(disabled)))
        self.resident()

        # Down until up-at, and at least --evacuated-for seconds once evacuated: the standby
        # serves the residents under the load for a while.
        time.sleep(max(0, started + a.up_at - time.time(), self.marks["evacuated_ms"] / 1000 + a.evacuated_for - time.time()))
        self.marks["up_ms"] = now_ms()
        self.rules(True)
        self.mappings(True)
        self.proxy[self.down].up()
        say("  %.1f s: %s UP: its rules, mappings and API back" % (time.time() - started, self.down))
        json.dump({"start_ms": self.marks["down_ms"], "end_ms": self.marks["up_ms"]}, open(outage_file, "w"))
        back = self.evacuate([])
        self.marks["homes_back_ms"] = now_ms()
        say("  %.1f s: the evacuation ended in %.1f s" % (time.time() - started, back))

        rc = load.wait(timeout=a.duration + 600)
        log.close()
        say("  moebi load finished (exit %d)" % rc)
        self.queues_drained()
        self.dead_letters()
        doubled = self.doubled_entries()
        self.report(rc, doubled)
        return self.finish()

    def report(self, rc, doubled):
        out = os.path.join(self.out, "load")
        text = open(os.path.join(self.out, "load.log")).read()
        try:
            s = json.load(open(os.path.join(out, "summary.json")))
        except (OSError, ValueError):
            fail("moebi load wrote no summary (exit %d): %s" % (rc, text[-1500:]))
            return
        acked = s["once"] + s["lost"] + s["doubled"]
        say("\n== the audit")
        say("sent %d, acknowledged %d, applied once %d, refused or failed %d; lost %d, doubled %d (inboxes: %d held twice)"
            % (s["sent"], acked, s["once"], s["failed"], s["lost"], s["doubled"], doubled))
        for d in s["disagreements"]:
            fail("the stock disagrees: " + d)
        if s["lost"] or s["doubled"] or doubled:
            fail("effects lost or doubled")
        if s["failed"]:
            fail("%d requests got no 202 from any region" % s["failed"])
        m, t0 = self.marks, s["start_ms"]
        say("outage of %s: from %.1f s to %.1f s after the load began (%.1f s down)"
            % (self.down, (m["down_ms"] - t0) / 1000, (m["up_ms"] - t0) / 1000, (m["up_ms"] - m["down_ms"]) / 1000))
        say("time to fail over: a client of %s, %.2f s (its first request, answered through another region's API); "
            "%s's residents' events went to %s as well %.1f s after the outage began (the evacuation applied), until %.1f s after it ended"
            % (self.down, m.get("client_failover_s", float("nan")), self.down, self.standby,
               (m["evacuated_ms"] - m["down_ms"]) / 1000, (m["homes_back_ms"] - m["up_ms"]) / 1000))
        # When the residents were served again: after the last second of the outage in which an
        # event waited for the region to come back (ten times the slowest before the outage).
        before = s["phases"].get("before", {}).get("max_ms", 0) or 1000.0
        per_second = s.get("max_ms_per_second", [])
        first, last = int((m["down_ms"] - t0) / 1000), int((m["up_ms"] - t0) / 1000)
        stuck = [i for i in range(first, min(last, len(per_second))) if per_second[i] > 10 * before]
        if stuck:
            served = stuck[-1] + 1 - (m["down_ms"] - t0) / 1000
            say("served again: events for %s's residents due from %.0f s after the outage began on were applied at once "
                "(by %s); those due before waited in %s's queues until it came back" % (self.down, served, self.standby, self.down))
        for name in ("before", "during", "after"):
            p = s["phases"].get(name, {})
            say("  events due %-6s the outage: %4d, p50 %8.1f ms, p99 %8.1f ms, max %8.1f ms"
                % (name, p.get("count", 0), p.get("p50_ms", 0), p.get("p99_ms", 0), p.get("max_ms", 0)))
        for line in text.splitlines():
            if line.startswith("plots:"):
                say(line)
        if not self.marks.get("resident_read") and any(p["home"] == self.down for p in self.topology["participants"]):
            fail("no resident of %s sent and read through another region" % self.down)

    def finish(self):
        for p in getattr(self, "proxy", {}).values():
            with contextlib.suppress(Exception):
                p.down()
        say("\ndrill: %s" % ("passed" if not failures else "FAILED: " + "; ".join(failures)))
        return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rehearsal")
    ap.add_argument("out")
    ap.add_argument("--down", default="us-east-1")
    ap.add_argument("--rate", type=float, default=4.0)
    ap.add_argument("--duration", type=int, default=90)
    ap.add_argument("--down-at", type=int, default=20)
    ap.add_argument("--up-at", type=int, default=60)
    ap.add_argument("--evacuated-for", type=int, default=20)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--infra", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "infra"))
    sys.exit(Drill(ap.parse_args()).run())


if __name__ == "__main__":
    main()
