#!/usr/bin/env python3
"""Queue-mode intake rate: durable (fsync'd redb commit before 202) events per second.

Starts hookgate (release build) with one mediaconvert route in `delivery.mode: queue` on a redb
store in a temporary directory, and drives it with wrk: the same signed 1.5 KB body, 50
keep-alive connections, 10 s. Dedup is off, so every request is a new event to store.

Backend:
  --backend down   nothing listens upstream and the first retry is an hour away: intake alone.
  --backend up     an nginx `return 200` backend: intake while the same events are delivered
                   (each delivery adds a read and an fsync'd ack).

After the run it checks that the count the gateway reports (queued requests) matches wrk's and
that, with the backend down, every one of them is still in the queue (hookgate_queue_depth).

CPU: hookgate on CPU 0, wrk (and nginx) on CPU 1. Requires wrk (and nginx for --backend up).

Usage: python3 bench/queue_intake.py [--backend down|up] [--duration 10] [--conns 50]
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "release" / "hookgate"
SECRET = "bench-secret-0123456789abcdef"

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (the shared helpers of bench/run.py)
from run import free_port  # noqa: E402

LUA = """
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-MediaConvert-Signature"] = os.getenv("SIG_VALUE")
function done(summary, latency, requests)
  io.write(string.format('WRK_JSON {"requests":%d,"duration_us":%d,"errors":%d,"status":%d,"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, latency:percentile(50), latency:percentile(99)))
end
"""


def metric(admin, name, labels):
    text = urllib.request.urlopen(f"http://{admin}/metrics", timeout=10).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=["down", "up"], default="down")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--conns", type=int, default=50)
    args = ap.parse_args()
    if not BINARY.exists():
        sys.exit("build first: cargo build --release")
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install -y wrk")

    tmp = Path(tempfile.mkdtemp(prefix="hookgate-intake-"))
    procs = []
    try:
        body = json.dumps({"job_id": "bench", "status": "COMPLETE", "detail": "x" * 1460}).encode()
        (tmp / "body.json").write_bytes(body)
        (tmp / "post.lua").write_text(LUA)
        out = subprocess.run([str(BINARY), "sign", "--scheme", "mediaconvert", "--secret", SECRET,
                              str(tmp / "body.json")], capture_output=True, text=True, check=True)
        sig = re.search(r"x-mediaconvert-signature: (\S+)", out.stdout).group(1)

        upstream_port = free_port()
        if args.backend == "up":
            if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
                sys.exit("nginx is missing: apt-get install -y nginx-light")
            (tmp / "nginx.conf").write_text(
                f"worker_processes 1; pid {tmp}/nginx.pid; error_log {tmp}/nginx.err;\n"
                f"events {{ worker_connections 1024; }}\n"
                f"http {{ access_log off; client_body_temp_path {tmp}; "
                f"server {{ listen 127.0.0.1:{upstream_port}; keepalive_timeout 65s; "
                f"location / {{ return 200 '{{}}'; }} }} }}\n")
            procs.append(subprocess.Popen(["taskset", "-c", "1", "nginx", "-c", str(tmp / "nginx.conf"),
                                           "-g", "daemon off;"]))
        (tmp / "hookgate.yaml").write_text(f"""
server: {{listen: 127.0.0.1:0, max_connections: 10000}}
admin: {{listen: 127.0.0.1:0}}
log: {{format: json, level: warn}}
store: {{kind: redb, path: {tmp}/hookgate.redb}}
routes:
  - name: q
    path: /hooks/q
    upstream: http://127.0.0.1:{upstream_port}/
    verify: {{scheme: mediaconvert, secrets: [{{id: k, value: {SECRET}}}]}}
    delivery: {{mode: queue, max_attempts: 100, backoff: {{base: 1h, max: 1h}}}}
""")
        gw = subprocess.Popen(["taskset", "-c", "0", str(BINARY), "run", "-c", str(tmp / "hookgate.yaml")],
                              stdout=subprocess.PIPE, text=True, env=dict(os.environ, RUST_LOG="info"))
        procs.append(gw)
        listen = admin = None
        deadline = time.time() + 30
        while time.time() < deadline and listen is None:
            line = gw.stdout.readline()
            if '"listening"' in line:
                v = json.loads(line)
                listen, admin = v["listen"], v["admin"]
        if listen is None:
            sys.exit("hookgate did not start")
        # Keep reading its log (one line per request) so it never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in gw.stdout], daemon=True).start()

        wrk = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", f"-c{args.conns}", f"-d{args.duration}s",
                              "-s", str(tmp / "post.lua"), f"http://{listen}/hooks/q"],
                             capture_output=True, text=True, timeout=args.duration + 60,
                             env=dict(os.environ, BODY_FILE=str(tmp / "body.json"), SIG_VALUE=sig))
        m = re.search(r"WRK_JSON (\{.*\})", wrk.stdout)
        if not m:
            sys.exit(f"no wrk summary:\n{wrk.stdout}\n{wrk.stderr}")
        w = json.loads(m.group(1))
        secs = w["duration_us"] / 1e6
        queued = metric(admin, "hookgate_requests_total", {"route": "q", "outcome": "queued"})
        depth = metric(admin, "hookgate_queue_depth", {"route": "q"})
        delivered = metric(admin, "hookgate_delivery_attempts_total", {"route": "q", "result": "delivered"})
        print(f"backend {args.backend}: {w['requests']} requests in {secs:.1f}s = "
              f"{w['requests'] / secs:.0f} durable events/s; p50 {w['p50_us'] / 1000:.2f} ms, "
              f"p99 {w['p99_us'] / 1000:.2f} ms; socket errors {w['errors']}, non-2xx {w['status']}")
        print(f"gateway: queued {queued:.0f}, still in queue {depth:.0f}, delivered so far {delivered:.0f}")
        if args.backend == "down" and depth != queued:
            sys.exit("queue depth differs from the accepted count")
    finally:
        run.stop(procs, tmp)


if __name__ == "__main__":
    main()
