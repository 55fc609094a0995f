#!/usr/bin/env python3
"""Two hookgate builds against each other, in one run: what one change costs or gains.

Starts an nginx `return 200` backend and both builds with the same config (bench/run.py's:
every check on, or verification alone with --verify-only), loads each for --warmup seconds (long
enough to fill the journal's ring), then alternates them round by round (A B, B A, ...) under
wrk, 64 connections. Prints each round's proxy CPU per request (from /proc), the medians, and in
how many pairs of rounds B took less than A: on a shared machine the pairs say more than either
median.

CPU split on 2 cores, as in run.py: both builds on CPU 0 (one runs at a time), wrk and the
backend on CPU 1. Every wait is bounded.

Usage: python3 bench/ab.py A_BINARY B_BINARY [--rounds 8] [--duration 4] [--warmup 5]
                           [--verify-only] [--extra YAML]
"""

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", type=Path, help="the build before the change")
    ap.add_argument("b", type=Path, help="the build after it")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--duration", type=int, default=4, help="seconds per round")
    ap.add_argument("--warmup", type=int, default=5, help="seconds of load per build first")
    ap.add_argument("--verify-only", action="store_true", help="no limits and no schema")
    ap.add_argument("--extra", default="", help="top-level YAML for both, e.g. 'journal: {enabled: false}'")
    args = ap.parse_args()
    for binary in (args.a, args.b):
        if not binary.is_file():
            sys.exit(f"no such build: {binary}")
    bench.ensure_tools()
    bench.BINARY = args.a.resolve()  # signs the body
    work = Path(tempfile.mkdtemp(prefix="hookgate-ab-"))
    procs = []
    try:
        backend = bench.free_port()
        procs.append(bench.start_nginx(work, "backend", f"""
  server {{ listen 127.0.0.1:{backend} backlog=4096;
           location / {{ return 200 '{{"status":"ok"}}'; }} }}""", bench.LOAD_CPU))
        body = work / "body.json"
        bench.make_body(body)
        header, value = bench.sign(body)
        env = {"BODY_FILE": str(body), "SIG_HEADER": header, "SIG_VALUE": value}
        builds = {}
        for name, binary in (("A", args.a), ("B", args.b)):
            port = bench.free_port()
            cfg = bench.hookgate_config(work, port, bench.free_port(), backend, name=name,
                                        extra=args.extra, checks=not args.verify_only)
            p = bench.start_hookgate(cfg, binary=binary.resolve())
            procs.append(p)
            bench.wait_port(port)
            builds[name] = (p.pid, f"http://127.0.0.1:{port}/webhooks/mediaconvert")
        for name, (_, url) in builds.items():
            if bench.forged_status(url, body, header) != 401:
                sys.exit(f"build {name} did not refuse a forged signature")
            bench.wrk(url, 64, args.warmup, env)
        cpu = {"A": [], "B": []}
        for rnd in range(args.rounds):
            order = ["A", "B"] if rnd % 2 == 0 else ["B", "A"]
            for name in order:
                pid, url = builds[name]
                before = bench.cpu_seconds(pid)
                r = bench.wrk(url, 64, args.duration, env)
                if r["errors"] or not r["requests"]:
                    sys.exit(f"build {name}: {r['errors']} errors in round {rnd + 1}")
                us = (bench.cpu_seconds(pid) - before) / r["requests"] * 1e6
                cpu[name].append(us)
                print(f"round {rnd + 1} {name}  {r['rps']:8.0f} req/s  {us:5.1f} us/request",
                      flush=True)
        lower = sum(b < a for a, b in zip(cpu["A"], cpu["B"]))
        level = sum(b == a for a, b in zip(cpu["A"], cpu["B"]))
        print(f"median A {statistics.median(cpu['A']):.1f} us/request  "
              f"B {statistics.median(cpu['B']):.1f} us/request  "
              f"(B lower in {lower} of {args.rounds} pairs, level in {level})")
    finally:
        bench.stop(procs, work)


if __name__ == "__main__":
    main()
