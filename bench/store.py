#!/usr/bin/env python3
"""The per-request cost of the Redis store: requests/s of one route with dedup and a route
limit on `store.kind: memory` and on `store.kind: redis`, same machine, same run, alternating.

Cases, each a 1.5 KB signed POST through wrk on 127.0.0.1:
- new:       every request has its own X-Event-Id (the dedup key): limit check, claim and
             delivered mark, then the backend (nginx answering 200). Redis: 3 round trips.
- duplicate: the same event every time: limit check and claim, answered "duplicate" by
             hookgate itself. Redis: 2 round trips.
- queued:    a `delivery.mode: queue` route on Redis (its own redis-server with appendonly yes,
             appendfsync everysec): new events, each answered 202 once stored (limit, claim,
             then one script storing the event and marking the key: 3 round trips), delivered
             to nginx in the background meanwhile.
- sentinel:  the queued case on a primary with one replica behind a Sentinel
             (`redis+sentinel://`), both appendonly yes, appendfsync everysec, measured twice:
             `min_replicas: 0` (`sentinel-0`) and `min_replicas: 1` (`sentinel-1`: each accepted
             event's script is followed by WAIT 1 on the same connection). The difference is
             the price of a replica's acknowledgement per queued event.
hookgate runs on CPU 0 with one worker; wrk, nginx and redis-server share CPU 1.

    cargo build --release && python3 bench/store.py [--duration 10] [--rounds 3] [--cases queued,sentinel]
"""
import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (the shared helpers of bench/run.py)


def config(work, name, port, admin, backend, store, delivery=""):
    cfg = work / f"{name}.yaml"
    cfg.write_text(f"""
server:
  listen: 127.0.0.1:{port}
  max_connections: 20000
  header_timeout: 60s
  workers: 1
admin: {{listen: "127.0.0.1:{admin}"}}
log: {{format: json, level: error}}
{store}
routes:
  - name: mediaconvert
    path: /webhooks/mediaconvert
    upstream: http://127.0.0.1:{backend}/webhooks/mediaconvert
    verify:
      scheme: mediaconvert
      secrets: [{{id: current, value: "{run.SECRET}"}}]
    rate_limit:
      route: {{rate: 1000000/s, burst: 1000000}}
    dedup: {{key: "{{header.X-Event-Id}}", ttl: 1h}}
{delivery}""")
    return cfg


def wait_replica(port, timeout=15):
    """Until the replica on `port` has synced with its primary."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = subprocess.run(["redis-cli", "-p", str(port), "INFO", "replication"],
                             capture_output=True, text=True).stdout
        if "master_link_status:up" in out:
            return
        time.sleep(0.05)
    raise RuntimeError(f"the replica on {port} did not sync")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--cases", default="duplicate,new,queued,sentinel",
                    help="comma-separated: duplicate, new, queued, sentinel")
    args = ap.parse_args()
    run.ensure_tools()
    if shutil.which("redis-server") is None:
        sys.exit("redis-server is missing: apt-get install redis-server")
    work = Path(tempfile.mkdtemp(prefix="hookgate-store-bench-"))
    procs = []
    try:
        body = work / "body.json"
        run.make_body(body)
        header, value = run.sign(body)
        backend = run.free_port()
        procs.append(run.start_nginx(work, "backend", f"""
  server {{ listen 127.0.0.1:{backend}; location / {{ return 200 '{{"received":true}}'; }} }}""",
                                     run.LOAD_CPU))
        rport = run.free_port()
        procs.append(subprocess.Popen(
            ["taskset", "-c", run.LOAD_CPU, "redis-server", "--port", str(rport), "--bind",
             "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        qport = run.free_port()
        procs.append(subprocess.Popen(
            ["taskset", "-c", run.LOAD_CPU, "redis-server", "--port", str(qport), "--bind",
             "127.0.0.1", "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
             "--dir", str(work)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        # A primary with one replica, and one Sentinel watching them.
        sprimary, sreplica, sentinel = run.free_port(), run.free_port(), run.free_port()
        for port, extra in ((sprimary, []), (sreplica, ["--replicaof", "127.0.0.1", str(sprimary)])):
            d = work / f"redis-{port}"
            d.mkdir()
            procs.append(subprocess.Popen(
                ["taskset", "-c", run.LOAD_CPU, "redis-server", "--port", str(port), "--bind",
                 "127.0.0.1", "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
                 "--dir", str(d)] + extra,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        sconf = work / "sentinel.conf"
        sconf.write_text(f"port {sentinel}\nbind 127.0.0.1\ndir {work}\n"
                         f"sentinel monitor bench 127.0.0.1 {sprimary} 1\n")
        procs.append(subprocess.Popen(
            ["taskset", "-c", run.LOAD_CPU, "redis-server", str(sconf), "--sentinel"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        run.wait_port(backend)
        run.wait_port(rport)
        run.wait_port(qport)
        for port in (sprimary, sreplica, sentinel):
            run.wait_port(port)
        wait_replica(sreplica)
        stores = {"memory": "store: {kind: memory}",
                  "redis": f'store: {{kind: redis, url: "redis://127.0.0.1:{rport}/0"}}'}
        cases = args.cases.split(",")
        urls = {}
        for name, store in stores.items():
            port, admin = run.free_port(), run.free_port()
            procs.append(run.start_hookgate(config(work, name, port, admin, backend, store)))
            run.wait_port(port)
            urls[name] = f"http://127.0.0.1:{port}/webhooks/mediaconvert"
        qport_hg, qadmin = run.free_port(), run.free_port()
        procs.append(run.start_hookgate(config(
            work, "queued", qport_hg, qadmin, backend,
            f'store: {{kind: redis, url: "redis://127.0.0.1:{qport}/0"}}',
            "    delivery: {mode: queue}\n")))
        run.wait_port(qport_hg)
        queued_url = f"http://127.0.0.1:{qport_hg}/webhooks/mediaconvert"
        sentinel_urls = {}
        for n in (0, 1):
            hg, adm = run.free_port(), run.free_port()
            store = (f'store: {{kind: redis, url: "redis+sentinel://127.0.0.1:{sentinel}/bench/0", '
                     f'prefix: "s{n}:", min_replicas: {n}}}')
            procs.append(run.start_hookgate(config(
                work, f"sentinel-{n}", hg, adm, backend, store, "    delivery: {mode: queue}\n")))
            run.wait_port(hg)
            sentinel_urls[f"sentinel-{n}"] = f"http://127.0.0.1:{hg}/webhooks/mediaconvert"
        env = {"BODY_FILE": str(body), "SIG_HEADER": header, "SIG_VALUE": value}
        results = {}
        # Deliver the duplicate case's event once, so its every copy is a duplicate (copies
        # racing the first delivery would get 409).
        for url in urls.values():
            req = urllib.request.Request(url, data=body.read_bytes(), method="POST",
                                         headers={header: value, "Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as r:
                assert r.status == 200, r.status
        # Duplicates first: the memory store keeps at most 1,000,000 marks, soonest to expire
        # dropped first, and the new-event runs would push that first mark out.
        for case in [c for c in ("duplicate", "new", "queued", "sentinel") if c in cases]:
            targets = {"queued": {"redis": queued_url}, "sentinel": sentinel_urls}.get(case, urls)
            for r in range(args.rounds):
                for name, url in targets.items():
                    tag = f"{case}-{name}-{r}-{time.time_ns()}" if case != "duplicate" else ""
                    e = dict(env, EVENT_IDS=tag)
                    if case == "duplicate":
                        e["EVENT_IDS"] = ""
                    res = run.wrk(url, args.conns, args.duration, e)
                    if res["errors"]:
                        raise RuntimeError(f"{case}/{name}: {res['errors']} errors (non-2xx or socket)")
                    results.setdefault((case, name), []).append(res)
                    run.log(f"{case:9} {name:10} round {r}: {res['rps']:.0f} req/s p99 {res['p99']:.2f} ms")
        print(f"{'case':10} {'store':10} {'req/s (median)':>15} {'p50 ms':>8} {'p99 ms':>8}")
        for (case, name), rs in results.items():
            med = statistics.median(x["rps"] for x in rs)
            p50 = statistics.median(x["p50"] for x in rs)
            p99 = statistics.median(x["p99"] for x in rs)
            print(f"{case:10} {name:10} {med:15.0f} {p50:8.2f} {p99:8.2f}")
    finally:
        run.stop(procs, work)


if __name__ == "__main__":
    main()
