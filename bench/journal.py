#!/usr/bin/env python3
"""The journal's memory and a bulk replay, measured on the release build.

1. Memory: hookgate (memory store, `journal.max_events: N`) takes 1.2 x N signed 1.5 KB events
   (wrk, keep-alive). Its RSS growth from a warmed-up process, over the events added since, is
   the memory an event costs; the budget is body + 1 KiB each. The journal must then hold
   exactly N events, the oldest dropped and counted.
2. Bulk replay: a queue route whose backend is down takes R distinct events, each a dead letter
   after one attempt; the backend comes up; `POST /api/replay {"state": "dead"}` (a dry run
   first, which must match R) sends them back through the route's queue at its `concurrency`.
   Measured: the time until the backend has every one; checked: each arrived exactly once.

Usage: python3 bench/journal.py [--events 100000] [--replay 10000] [--concurrency 16]
                                [--no-memory] [--no-replay]
"""

import argparse
import hashlib
import hmac
import http.client
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (the contestants and helpers of bench/run.py)

TOKEN = "bench-admin-token"


def metric(admin, name, labels=""):
    text = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{" + labels) or (not labels and line.startswith(name + " ")):
            total += float(line.rsplit(" ", 1)[1])
    return total


def api(admin, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", admin, timeout=60)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, json.loads(data or b"null")


def wait_for(what, check, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


def config(work, port, admin, upstream, extra):
    cfg = work / f"hookgate-{port}.yaml"
    cfg.write_text(f"""
server: {{listen: "127.0.0.1:{port}", max_connections: 20000}}
admin: {{listen: "127.0.0.1:{admin}", token: {{id: admin, value: "{TOKEN}"}}}}
log: {{format: json, level: warn}}
routes:
  - name: mediaconvert
    path: /webhooks/mediaconvert
    upstream: {upstream}
    verify:
      scheme: mediaconvert
      secrets: [{{id: current, value: "{run.SECRET}"}}]
{extra}
""")
    return cfg


def measure_memory(work, events):
    backend, port, admin = run.free_port(), run.free_port(), run.free_port()
    procs = [run.start_nginx(work, "backend", f"""
  server {{ listen 127.0.0.1:{backend} backlog=4096; location / {{ return 200 '{{"status":"ok"}}'; }} }}""",
                             run.LOAD_CPU)]
    body_file = work / "body.json"
    size = run.make_body(body_file)
    header, value = run.sign(body_file)
    cfg = config(work, port, admin, f"http://127.0.0.1:{backend}/in",
                 f"journal: {{max_events: {events}}}")
    procs.append(run.start_hookgate(cfg, cpu="0,1", threads=2))
    try:
        for p in (backend, port, admin):
            run.wait_port(p)
        env = {"BODY_FILE": str(body_file), "SIG_HEADER": header, "SIG_VALUE": value}
        url = f"http://127.0.0.1:{port}/webhooks/mediaconvert"
        # Warm up the allocator and the connections (a few thousand events); the growth from
        # here on is what the journal's further events cost.
        run.wrk(url, 4, 1, env)
        time.sleep(1)
        base = run.rss_kib(procs[1].pid)
        base_events = metric(admin, "hookgate_journal_events")
        target = int(events * 1.2)
        seen0 = run.requests_seen(admin)
        cmd = ["taskset", "-c", "0,1", "wrk", "-t2", "-c64", "-d300s", "--timeout", "5s",
               "-s", str(run.BENCH / "post.lua"), url]
        wrk = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        t0 = time.monotonic()
        try:
            wait_for(f"{target} requests", lambda: run.requests_seen(admin) - seen0 >= target, 300)
        finally:
            wrk.terminate()
            wrk.wait(timeout=30)
        secs = time.monotonic() - t0
        sent = int(run.requests_seen(admin) - seen0)
        held = wait_for(f"{events} journal events",
                        lambda: metric(admin, "hookgate_journal_events") == events and events, 30)
        time.sleep(1)
        after = run.rss_kib(procs[1].pid)
        dropped = metric(admin, "hookgate_journal_dropped_total", 'reason="max_events"')
        _, newest = api(admin, "GET", "/api/events?limit=1")
        growth = (after - base) * 1024
        # The growth bought the events beyond those held at the base line.
        per_event = growth / max(1, events - base_events)
        budget = size + 1024
        return {
            "events": events, "body_bytes": size, "requests": sent, "seconds": round(secs, 1),
            "rss_base_mib": round(base / 1024, 1), "rss_after_mib": round(after / 1024, 1),
            "events_at_base": int(base_events), "growth_mib": round(growth / 2**20, 1),
            "bytes_per_event": round(per_event), "budget_bytes_per_event": budget,
            "journal_mib_estimate": round(per_event * events / 2**20, 1),
            "budget_mib": round(budget * events / 2**20, 1), "held": int(held),
            "dropped_max_events": int(dropped), "newest_listed": bool(newest["events"]),
            "within_budget": per_event <= budget,
        }
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=30)


class Counter(http.server.BaseHTTPRequestHandler):
    """The recovered backend: counts each body it is sent."""
    protocol_version = "HTTP/1.1"
    seen = {}
    lock = threading.Lock()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        job = json.loads(body)["job_id"]
        with Counter.lock:
            Counter.seen[job] = Counter.seen.get(job, 0) + 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def send_events(port, count, threads=4):
    """`count` distinct signed events over keep-alive connections; every answer must be 202."""
    def worker(start):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for i in range(start, count, threads):
            body = json.dumps({"job_id": f"job_{i:06d}", "status": "completed",
                               "progress_percentage": 100}).encode()
            sig = "sha256=" + hmac.new(run.SECRET.encode(), body, hashlib.sha256).hexdigest()
            c.request("POST", "/webhooks/mediaconvert", body=body,
                      headers={"X-MediaConvert-Signature": sig, "Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            if r.status != 202:
                raise RuntimeError(f"event {i}: {r.status}")
        c.close()
    ts = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def measure_replay(work, count, concurrency):
    backend, port, admin = run.free_port(), run.free_port(), run.free_port()
    extra = f"""    delivery:
      mode: queue
      concurrency: {concurrency}
      max_attempts: 1
store: {{kind: redb, path: "{work}/replay.redb"}}
journal: {{max_events: {max(100_000, count * 3)}}}"""
    cfg = config(work, port, admin, f"http://127.0.0.1:{backend}/in", extra)
    proc = run.start_hookgate(cfg, cpu="0,1", threads=2)
    server = None
    try:
        run.wait_port(port)
        run.wait_port(admin)
        t0 = time.monotonic()
        send_events(port, count)
        intake = time.monotonic() - t0

        def dead():
            _, v = api(admin, "GET", "/api/routes")
            return v["routes"][0]["dead_letters"] >= count
        wait_for(f"{count} dead letters", dead, 300)
        # The journal records each dead letter a moment after the queue makes it one.
        def dry_run():
            status, dry = api(admin, "POST", "/api/replay", {"state": "dead", "dry_run": True})
            return dry if status == 200 and dry["matched"] == count else None
        dry = wait_for(f"a dry run matching {count}", dry_run, 30)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", backend), Counter)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        t0 = time.monotonic()
        status, done = api(admin, "POST", "/api/replay", {"state": "dead"})
        answered = time.monotonic() - t0
        if status != 200 or done["replayed"] != count:
            raise RuntimeError(f"replay: {status} {done}")
        wait_for(f"{count} deliveries", lambda: len(Counter.seen) >= count, 600)
        secs = time.monotonic() - t0
        time.sleep(1)
        twice = sum(1 for n in Counter.seen.values() if n != 1)
        _, routes = api(admin, "GET", "/api/routes")
        return {
            "events": count, "concurrency": concurrency, "intake_seconds": round(intake, 1),
            "dry_run_matched": dry["matched"], "replayed": done["replayed"],
            "api_answered_seconds": round(answered, 2), "delivered_seconds": round(secs, 1),
            "per_second": round(count / secs), "delivered": len(Counter.seen),
            "not_exactly_once": twice, "dead_letters_after": routes["routes"][0]["dead_letters"],
        }
    finally:
        if server:
            server.shutdown()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--replay", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--no-replay", action="store_true")
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    run.ensure_tools()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=run.ROOT, check=True)
    work = Path(tempfile.mkdtemp(prefix="hookgate-journal-"))
    out = {}
    try:
        if not args.no_memory:
            run.log(f"memory: {args.events} events")
            out["memory"] = measure_memory(work, args.events)
            run.log(json.dumps(out["memory"]))
        if not args.no_replay:
            run.log(f"bulk replay: {args.replay} dead letters")
            out["replay"] = measure_replay(work, args.replay, args.concurrency)
            run.log(json.dumps(out["replay"]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out, indent=2))
    ok = out.get("memory", {}).get("within_budget", True) and \
        out.get("replay", {}).get("not_exactly_once", 0) == 0
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
