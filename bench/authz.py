#!/usr/bin/env python3
"""Verify-only checks per second on one core, next to the inline gateway (docs/authz.md).

One hookgate (release build, one runtime thread, pinned to CPU 0) with bench/run.py's route
(mediaconvert verification, per-IP and route limits, the builtin schema; no dedup, so every
check of the same body is allowed) and an `authz` listener. Three contestants, in rounds that
alternate their order, each sending the same signed 1.5 KB body:

- inline: wrk POSTs to the gateway, which forwards to an nginx `return 200` backend;
- http: wrk POSTs an Envoy `http_service` check (`/authz<path>`, the body, the signature);
- grpc: h2load sends `envoy.service.auth.v3.Authorization/Check` over h2c (2 connections x 8
  streams), a CheckRequest with the body in `raw_body`, encoded here by hand and checked once
  against hookgate's own count of allowed checks before anything is measured.

The load generators and the backend share CPU 1. Reported: requests/s, hookgate's CPU time per
request (from /proc: the steadiest figure on a shared machine), medians over the rounds. Every
wait is bounded.

Usage: python3 bench/authz.py [--rounds 3] [--duration 10] [--conns 16] [--no-build]
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (the contestants and helpers of bench/run.py)

PATH = "/webhooks/mediaconvert"
# Where `cargo build --release` puts the binary (CARGO_TARGET_DIR honoured).
run.BINARY = Path(os.environ.get("CARGO_TARGET_DIR", run.ROOT / "target")) / "release" / "hookgate"


def ensure_h2load():
    if subprocess.run(["which", "h2load"], capture_output=True).returncode != 0:
        run.log("installing nghttp2-client (h2load) from Debian")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "nghttp2-client"], check=True, env=env,
                       stdout=subprocess.DEVNULL)


# A protobuf writer for the few fields of a CheckRequest (envoy/service/auth/v3).
def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(tag, payload):
    """A length-delimited field (string, bytes or message)."""
    return varint(tag << 3 | 2) + varint(len(payload)) + payload


def check_request(body, header, value):
    headers = [(":method", "POST"), (":path", PATH), (":authority", "hooks.example.com"),
               ("content-type", "application/json"), ("content-length", str(len(body))),
               (header.lower(), value)]
    http = field(2, b"POST")
    for k, v in headers:  # map<string, string> headers = 3
        http += field(3, field(1, k.encode()) + field(2, v.encode()))
    http += field(4, PATH.encode()) + field(5, b"hooks.example.com") + field(12, body)
    socket_address = field(2, b"203.0.113.7") + varint(3 << 3) + varint(40000)
    source = field(1, field(1, socket_address))  # Peer.address -> Address.socket_address
    attributes = field(1, source) + field(4, field(2, http))  # source, request.http
    message = field(1, attributes)
    # The gRPC frame: not compressed, then the length.
    return b"\x00" + len(message).to_bytes(4, "big") + message


def h2load(port, frame_file, duration, conns=2, streams=8):
    cmd = ["taskset", "-c", run.LOAD_CPU, "h2load", "-t1", f"-c{conns}", f"-m{streams}",
           "-D", str(duration), "--warm-up-time", "1",
           "-H", "content-type: application/grpc", "-H", "te: trailers",
           "-d", str(frame_file),
           f"http://127.0.0.1:{port}/envoy.service.auth.v3.Authorization/Check"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60).stdout
    rps = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out)
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed", out)
    if not rps or not done:
        raise RuntimeError(f"h2load printed no summary:\n{out}")
    return {"rps": float(rps.group(1)), "requests": int(done.group(2)),
            "errors": int(done.group(3))}


def metric(admin, name, labels):
    text = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") and all(l in line for l in labels))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()

    run.ensure_tools()
    ensure_h2load()
    if not args.no_build:
        run.log("cargo build --release")
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=run.ROOT, check=True)
    work = Path(tempfile.mkdtemp(prefix="hookgate-authz-bench-"))
    procs = []
    try:
        backend = run.free_port()
        procs.append(run.start_nginx(work, "backend", f"""
  server {{ listen 127.0.0.1:{backend} backlog=4096; location / {{ return 200 "ok"; }} }}""",
                                     run.LOAD_CPU))
        port, admin, authz = run.free_port(), run.free_port(), run.free_port()
        cfg = run.hookgate_config(work, port, admin, backend,
                                  extra=f"authz: {{listen: \"127.0.0.1:{authz}\"}}")
        hg = run.start_hookgate(cfg, binary=run.BINARY)
        procs.append(hg)
        for p in (backend, port, admin, authz):
            run.wait_port(p)

        body_file = work / "body.json"
        size = run.make_body(body_file)
        header, value = run.sign(body_file)
        frame_file = work / "check.bin"
        frame_file.write_bytes(check_request(body_file.read_bytes(), header, value))
        env = {"BODY_FILE": str(body_file), "SIG_HEADER": header, "SIG_VALUE": value}
        urls = {"inline": f"http://127.0.0.1:{port}{PATH}",
                "http": f"http://127.0.0.1:{authz}/authz{PATH}"}

        # Warm-up: each contestant must be answered as allowed/forwarded before measuring.
        allowed = ('mode="authz"', 'outcome="allowed"')
        before = metric(admin, "hookgate_requests_total", allowed)
        r = h2load(authz, frame_file, 1, conns=1, streams=1)
        after = metric(admin, "hookgate_requests_total", allowed)
        if r["errors"] or after - before < r["requests"] or r["requests"] == 0:
            raise RuntimeError(f"gRPC warm-up: {r}, {after - before} allowed")
        for name, url in urls.items():
            w = run.wrk(url, 4, 1, env)
            if w["errors"]:
                raise RuntimeError(f"{name} warm-up: {w}")

        results = {k: [] for k in ("inline", "http", "grpc")}
        order = list(results)
        for rnd in range(args.rounds):
            for name in (order if rnd % 2 == 0 else order[::-1]):
                cpu0 = run.cpu_seconds(hg.pid)
                if name == "grpc":
                    r = h2load(authz, frame_file, args.duration, streams=max(1, args.conns // 2))
                else:
                    r = run.wrk(urls[name], args.conns, args.duration, env)
                cpu = run.cpu_seconds(hg.pid) - cpu0
                r["cpu_us"] = cpu / max(1, r["requests"]) * 1e6
                results[name].append(r)
                run.log(f"round {rnd + 1} {name}: {r['rps']:.0f} req/s, {r['cpu_us']:.1f} us CPU/req, "
                        f"{r['errors']} errors")

        print(f"\nbody {size} bytes; {args.rounds} rounds x {args.duration}s; "
              f"{args.conns} connections (gRPC: 2 connections x {max(1, args.conns // 2)} streams)\n")
        print("| contestant | req/s | hookgate CPU/req us | errors |")
        print("|---|---|---|---|")
        labels = {"inline": "inline gateway (verify + forward)", "http": "HTTP check (Envoy http_service shape)",
                  "grpc": "gRPC Check (h2c)"}
        for name, rs in results.items():
            rps = statistics.median(r["rps"] for r in rs)
            cpu = statistics.median(r["cpu_us"] for r in rs)
            errors = sum(r["errors"] for r in rs)
            print(f"| {labels[name]} | {rps:.0f} | {cpu:.1f} | {errors} |")
    finally:
        run.stop(procs, work)


if __name__ == "__main__":
    main()
