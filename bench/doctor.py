#!/usr/bin/env python3
"""Valid traffic's throughput while a burst of forgeries hits the same route: does the signature
doctor let forgeries buy CPU?

Starts an nginx `return 200` backend and hookgate (release build, one worker, like bench/run.py)
with a mediaconvert route (verification, limits, schema). In each round, wrk sends the signed
1.5 KB body for --duration seconds at --conns connections; in three of the four scenarios a
second wrk sends a burst of --forgeries forged requests (bad signature, a --forgery-size JSON
body in which every alteration the doctor tries applies) starting 0.5 s in:

  alone     valid traffic only
  budget    + the burst, doctor on with its default budget (diagnose_per_minute: 60)
  off       + the burst, doctor off (diagnose_per_minute: 0): what the forgeries cost by themselves
  unbudgeted + the burst, doctor examining every failure (diagnose_per_minute: 1000000)

Prints, per scenario: valid requests/s (median of the rounds; the scenario order rotates each
round) and its ratio to `alone` in the same round (the median of those ratios is the figure, as
a shared machine's load drifts between rounds; the bar is `budget` within 10% of `alone`);
hookgate's CPU time per valid request, the burst and the examinations included (the steadier
figure on a shared machine); and how many forgeries were examined (from
hookgate_verify_failures_total{diagnosis}).

CPU split on 2 cores: hookgate (its worker and the blocking pool the doctor runs on) on CPU 0,
wrk and the backend on CPU 1. Every run is bounded in time.

Usage: python3 bench/doctor.py [--rounds 5] [--duration 4] [--conns 16] [--forgeries 1000]
                               [--forgery-size 60000] [--binary target/release/hookgate]
Needs wrk and nginx (Debian: wrk, nginx-light; installed when missing).
"""

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import run as bench  # noqa: E402  (the helpers of bench/run.py)

ROOT = BENCH.parent
SCENARIOS = {"alone": None, "budget": 60, "off": 0, "unbudgeted": 1_000_000}


def log(msg):
    print(f"[doctor-bench] {msg}", file=sys.stderr, flush=True)


def ensure_tools():
    missing = [p for p, b in [("wrk", "wrk"), ("nginx-light", "nginx")]
               if shutil.which(b) is None and not Path(f"/usr/sbin/{b}").exists()]
    if not missing:
        return
    log(f"installing {' '.join(missing)} from Debian")
    # Keep the package from starting a system nginx.
    policy = Path("/usr/sbin/policy-rc.d")
    made_policy = not policy.exists()
    if made_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "-qq",
                        "--no-install-recommends", *missing], check=True, env=env,
                       stdout=subprocess.DEVNULL)
    finally:
        if made_policy:
            policy.unlink()


def binary(given):
    if given:
        return Path(given)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    log("building hookgate (release)")
    subprocess.run(["cargo", "build", "--release", "--bin", "hookgate"], cwd=ROOT, check=True)
    return target / "release" / "hookgate"


def forged_body(path, size):
    """JSON with Latin-1 letters, slashes, CRLF and LF line endings and a trailing newline."""
    out, n = "[\r\n", 0
    while len(out) < size:
        if n:
            out += ",\r\n" if n % 2 == 0 else ",\n"
        out += f'  {{"id": {n}, "url": "https://ex.com/a/{n}", "note": "caf\u00e9 \u00fcber"}}'
        n += 1
    path.write_bytes((out + "\r\n]\n").encode())


def config(work, port, admin, backend, per_minute):
    cfg = work / f"hookgate-{per_minute}.yaml"
    cfg.write_text(f"""
server:
  listen: 127.0.0.1:{port}
  max_connections: 20000
  header_timeout: 60s
  trusted_proxies: [127.0.0.1/32]
  max_body_bytes: 1MiB
admin: {{listen: "127.0.0.1:{admin}"}}
log: {{format: json, level: warn}}
routes:
  - name: mediaconvert
    path: /webhooks/mediaconvert
    upstream: http://127.0.0.1:{backend}/webhooks/mediaconvert
    verify:
      scheme: mediaconvert
      secrets: [{{id: current, value: "{bench.SECRET}"}}, {{id: next, value: "whsec_bmV4dC1zZWNyZXQ"}}]
      retired_secrets: [{{id: old, value: "whsec_b2xkLXNlY3JldA"}}]
      diagnose_per_minute: {per_minute}
    rate_limit:
      per_ip: {{rate: 1000000/s, burst: 1000000}}
      route: {{rate: 1000000/s, burst: 1000000}}
    schema: {{builtin: mediaconvert, mode: enforce}}
""")
    return cfg


def examined(admin):
    text = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5).read().decode()
    counts = {}
    for line in text.splitlines():
        if line.startswith("hookgate_verify_failures_total{"):
            labels, value = line.rsplit(" ", 1)
            kind = labels.split('diagnosis="', 1)[1].split('"', 1)[0]
            counts[kind] = counts.get(kind, 0) + int(float(value))
    return counts


def burst(port, body_file, count, delay):
    """wrk sending `count` forgeries (8 connections, one thread) after `delay` seconds."""
    time.sleep(delay)
    env = dict(os.environ, BODY_FILE=str(body_file), SIG_HEADER="X-MediaConvert-Signature",
               SIG_VALUE="sha256=" + "ab" * 32, XFF_FLOOD="1", FLOOD_COUNT=str(count))
    cmd = ["taskset", "-c", bench.LOAD_CPU, "wrk", "-t1", "-c8", "-d30s", "--timeout", "5s",
           "-s", str(BENCH / "post.lua"), f"http://127.0.0.1:{port}/webhooks/mediaconvert"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def scenario(work, exe, backend, name, args, valid_body, sig, forged):
    port, admin = bench.free_port(), bench.free_port()
    per_minute = SCENARIOS[name]
    cfg = config(work, port, admin, backend, 60 if per_minute is None else per_minute)
    proc = bench.start_hookgate(cfg, binary=exe)
    try:
        bench.wait_port(port)
        bench.wait_port(admin)
        url = f"http://127.0.0.1:{port}/webhooks/mediaconvert"
        env = {"BODY_FILE": str(valid_body), "SIG_HEADER": sig[0], "SIG_VALUE": sig[1]}
        bench.wrk(url, args.conns, 1, env)  # warm-up
        holder = {}
        starter = threading.Thread(
            target=lambda: holder.update(p=burst(port, forged, args.forgeries, 0.5)))
        if per_minute is not None:
            starter.start()
        cpu0 = bench.cpu_seconds(proc.pid)
        r = bench.wrk(url, args.conns, args.duration, env)
        if per_minute is not None:
            starter.join()
            forger = holder["p"]
            try:
                forger.wait(timeout=30)
            except subprocess.TimeoutExpired:
                forger.terminate()
                forger.wait(timeout=10)
        time.sleep(0.5)
        # hookgate's CPU over the run and the burst, examinations included.
        r["cpu_s"] = bench.cpu_seconds(proc.pid) - cpu0
        r["examined"] = examined(admin)
        return r
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=4)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--forgeries", type=int, default=1000)
    # Just under the 64 KiB beyond which the doctor checks bodies as received only: its worst case.
    ap.add_argument("--forgery-size", type=int, default=60000)
    ap.add_argument("--binary")
    args = ap.parse_args()

    ensure_tools()
    exe = binary(args.binary)
    work = Path(tempfile.mkdtemp(prefix="hookgate-doctor-bench-"))
    procs = []
    try:
        backend = bench.free_port()
        procs.append(bench.start_nginx(work, "backend", f"server {{ listen 127.0.0.1:{backend}; "
                                       "location / { return 200 'ok'; } }", bench.LOAD_CPU))
        bench.wait_port(backend)
        valid = work / "valid.json"
        bench.make_body(valid)
        sig = sign(exe, valid)
        forged = work / "forged.json"
        forged_body(forged, args.forgery_size)

        names = list(SCENARIOS)
        results = {n: [] for n in names}
        for rnd in range(args.rounds):
            order = names[rnd % len(names):] + names[:rnd % len(names)]
            for name in order:
                r = scenario(work, exe, backend, name, args, valid, sig, forged)
                results[name].append(r)
                log(f"round {rnd + 1} {name}: {r['rps']:.0f} req/s, errors {r['errors']}, "
                    f"hookgate CPU {r['cpu_s']:.2f} s, failures by diagnosis {r['examined']}")

        # Ratios within each round: the shared machine's load drifts between rounds far more
        # than between the runs of one round.
        print(f"\nvalid traffic, {args.conns} connections, {args.duration} s per run, "
              f"{args.rounds} rounds (scenario order rotated); burst: {args.forgeries} forgeries "
              f"of {args.forgery_size} bytes, starting 0.5 s in")
        print("| scenario | valid req/s (median) | vs alone, per round | vs alone (median) | "
              "hookgate CPU per valid request, us (median) | forgeries examined |")
        print("|---|---|---|---|---|---|")
        for name in names:
            ratios = [r["rps"] / a["rps"] for r, a in zip(results[name], results["alone"])]
            rps = statistics.median(r["rps"] for r in results[name])
            seen = statistics.median(
                sum(v for k, v in r["examined"].items() if k != "skipped") for r in results[name])
            per_round = " ".join(f"{x:.3f}" for x in ratios)
            cpu = statistics.median(r["cpu_s"] * 1e6 / r["requests"] for r in results[name])
            print(f"| {name} | {rps:.0f} | {per_round} | {statistics.median(ratios):.3f} | "
                  f"{cpu:.1f} | {seen:.0f} |")
    finally:
        bench.stop(procs, work)


def sign(exe, body_file):
    saved = bench.BINARY
    bench.BINARY = exe
    try:
        return bench.sign(body_file)
    finally:
        bench.BINARY = saved


if __name__ == "__main__":
    main()
