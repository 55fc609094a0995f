#!/usr/bin/env python3
"""hookgate against nginx, on this machine, in one run.

Starts an nginx `return 200` backend, nginx as a plain keep-alive reverse proxy to it, and hookgate
(release build) with a mediaconvert route, high rate limits and the builtin schema, all on
127.0.0.1. Sends the same signed 1.5 KB job.completed body with wrk through each, alternating the
contestants round by round, at fixed connection counts. Prints a Markdown table (req/s, p50, p99,
p99.9, errors; medians of the rounds) with hookgate/nginx ratios, writes results.md, results.json
and a PNG chart, then measures hookgate's memory: idle, with 10,000 open connections before and
after one request each, and after a flood from 1,000,000 distinct client addresses (trusted
X-Forwarded-For).

CPU split on 2 cores: the proxy under test (nginx, one worker; or hookgate, one runtime thread) is
pinned to CPU 0; wrk and the backend share CPU 1. Every loop is bounded in time.

Usage: python3 bench/run.py [--rounds 3] [--duration 10] [--conns 16,128] [--quick] [--no-memory]
                           [--extra YAML] [--baseline path/to/hookgate] [--baseline-extra YAML]
                           [--warmup SECONDS]
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BINARY = ROOT / "target" / "release" / "hookgate"
FLOOR = ROOT / "target" / "release" / "examples" / "floor"
SECRET = "bench-secret-0123456789abcdef"
PROXY_CPU = "0"
LUA_MODULE = "/usr/lib/nginx/modules/ngx_http_lua_module.so"
LOAD_CPU = "1"


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def ensure_tools():
    missing = [p for p, b in [("wrk", "wrk"), ("nginx-light", "nginx"), ("gnuplot-nox", "gnuplot")]
               if shutil.which(b) is None and not Path(f"/usr/sbin/{b}").exists()]
    if not Path(LUA_MODULE).exists():
        missing.append("libnginx-mod-http-lua")
    if missing:
        log(f"installing {' '.join(missing)} from Debian")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        # The package starts a system nginx on port 80; it is not ours.
        subprocess.run(["pkill", "-x", "nginx"], check=False)


def ensure_oha():
    """oha (crates.io) for the fixed-rate latency; installed with cargo when missing."""
    found = shutil.which("oha") or (Path.home() / ".cargo/bin/oha")
    if not Path(found).exists():
        log("installing oha from crates.io (cargo install, a few minutes)")
        subprocess.run(["cargo", "install", "--locked", "--quiet", "oha"], check=True)
    return str(found)


def oha(binary, url, rate, duration, body_file, header, value, conns=64, cpu=LOAD_CPU):
    """Latency at a fixed rate, corrected for coordinated omission: each request is timed from
    when the schedule says it should have started, so a stalled proxy is not flattered by the
    requests the stall kept from being sent."""
    cmd = ["taskset", "-c", cpu, binary, "-z", f"{duration}s", "-q", str(rate), "-c", str(conns),
           "--latency-correction", "--no-tui", "--output-format", "json", "-m", "POST",
           "-D", str(body_file), "-T", "application/json", "-H", f"{header}: {value}", url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    if out.returncode != 0:
        raise RuntimeError(f"oha failed: {out.stderr.strip()}")
    r = json.loads(out.stdout)
    codes = r.get("statusCodeDistribution", {})
    ok = codes.get("200", 0)
    # Requests still in flight when the duration ends are cut by oha itself, not failed.
    failed = {e: n for e, n in r.get("errorDistribution", {}).items() if "deadline" not in e}
    return {"requests": sum(codes.values()), "ok": ok,
            "errors": sum(codes.values()) - ok + sum(failed.values()), "failed": failed,
            "p50": r["latencyPercentiles"]["p50"] * 1e3, "p99": r["latencyPercentiles"]["p99"] * 1e3,
            "p999": r["latencyPercentiles"]["p99.9"] * 1e3}


def stop(procs, work):
    """Ends every started process (bounded wait, then kill) and removes the work directory."""
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
    shutil.rmtree(work, ignore_errors=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port} after {timeout}s")


def nginx_bin():
    return shutil.which("nginx") or "/usr/sbin/nginx"


def start_nginx(work, name, server_block, cpu, main=""):
    conf = work / f"{name}.conf"
    conf.write_text(f"""
{main}
worker_processes 1;
daemon off;
pid {work}/{name}.pid;
error_log {work}/{name}.error.log warn;
events {{ worker_connections 20000; }}
http {{
  access_log off;
  client_body_temp_path {work}/{name}-body;
  proxy_temp_path {work}/{name}-proxy;
  keepalive_requests 1000000;
  {server_block}
}}
""")
    return subprocess.Popen(["taskset", "-c", cpu, nginx_bin(), "-c", str(conf), "-p", str(work)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_body(path):
    body = {
        "job_id": "job_abc123xyz", "status": "completed", "job_type": "video",
        "progress_percentage": 100, "cost_micros": 1575000, "cost_cents": 158,
        "processing_time_seconds": 45, "output_size_bytes": 8192000, "input_format": "mp4",
        "output_format": "webm", "created_at": "2024-01-15T10:30:00Z",
        "completed_at": "2024-01-15T10:31:15Z",
        "output_url": "https://cdn.example.com/outputs/job_abc123xyz/video.webm",
    }
    pad = 1536 - len(json.dumps(body, separators=(",", ":")))
    body["metadata"] = {"note": "x" * max(0, pad - len(',"metadata":{"note":""}'))}
    data = json.dumps(body, separators=(",", ":")).encode()
    path.write_bytes(data)
    return len(data)


def sign(body_file):
    out = subprocess.run([str(BINARY), "sign", "--scheme", "mediaconvert", "--secret", SECRET,
                          str(body_file)], check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.lower().startswith("x-mediaconvert-signature:"):
            name, value = line.split(":", 1)
            return name.strip(), value.strip()
    raise RuntimeError("hookgate sign printed no signature header")


def hookgate_config(work, port, admin, backend, extra_server="", name="hookgate", extra="",
                    checks=True):
    """`checks`: the schema and the per-IP and route limits besides verification."""
    limits = """
    rate_limit:
      per_ip: {rate: 1000000/s, burst: 1000000}
      route: {rate: 1000000/s, burst: 1000000}
    schema: {builtin: mediaconvert, mode: enforce}""" if checks else ""
    cfg = work / f"{name}.yaml"
    cfg.write_text(f"""
server:
  listen: 127.0.0.1:{port}
  max_connections: 20000
  # Every load generator here connects from 127.0.0.1.
  max_connections_per_ip: 20000
  header_timeout: 60s
  trusted_proxies: [127.0.0.1/32]
{extra_server}
admin: {{listen: "127.0.0.1:{admin}"}}
log: {{format: json, level: warn}}
routes:
  - name: mediaconvert
    path: /webhooks/mediaconvert
    upstream: http://127.0.0.1:{backend}/webhooks/mediaconvert
    verify:
      scheme: mediaconvert
      secrets: [{{id: current, value: "{SECRET}"}}]{limits}
{extra}
""")
    return cfg


def start_hookgate(cfg, cpu=PROXY_CPU, threads=1, binary=BINARY):
    env = dict(os.environ, TOKIO_WORKER_THREADS=str(threads))
    return subprocess.Popen(["taskset", "-c", cpu, str(binary), "run", "-c", str(cfg)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wrk(url, conns, duration, env_extra, cpu=LOAD_CPU, threads=1):
    env = dict(os.environ, **env_extra)
    cmd = ["taskset", "-c", cpu, "wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s",
           "--timeout", "5s", "-s", str(BENCH / "post.lua"), url]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True,
                         timeout=duration + 60).stdout
    m = re.search(r"WRK_JSON (\{.*\})", out)
    if not m:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    r = json.loads(m.group(1))
    secs = r["duration_us"] / 1e6
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    return {"rps": r["requests"] / secs, "p50": r["p50_us"] / 1000, "p99": r["p99_us"] / 1000,
            "p999": r["p999_us"] / 1000, "errors": errors, "requests": r["requests"]}


def forged_status(url, body_file, header):
    """The status a contestant answers to the body with a wrong signature."""
    import urllib.error
    import urllib.request
    req = urllib.request.Request(url, data=body_file.read_bytes(), method="POST",
                                 headers={header: "sha256=" + "0" * 64,
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def steal():
    """CPU steal since boot, in jiffies: compared before and after a round."""
    with open("/proc/stat") as f:
        parts = f.readline().split()
    return int(parts[8]) if len(parts) > 8 else 0


def cpu_seconds(pid):
    """User + system CPU of a process and its children processes (nginx workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            pids += [int(x) for x in f.read().split()]
    except OSError:
        pass
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            pass
    return total


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def tree_rss_kib(pid):
    """RSS of a process and its children (nginx's workers)."""
    total = rss_kib(pid)
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            total += sum(rss_kib(int(c)) for c in f.read().split())
    except OSError:
        pass
    return total


def kept_alive_kib(pid, port, request, count=5000):
    """What one idle keep-alive connection costs a proxy after one forwarded request: RSS
    growth with `count` of them open, per connection."""
    hold_connections(port, 1, request)[0].close()
    time.sleep(0.5)
    before = tree_rss_kib(pid)
    socks = hold_connections(port, count, request)
    time.sleep(0.5)
    after = tree_rss_kib(pid)
    for s in socks:
        s.close()
    return (after - before) / count


def hold_connections(port, count, request):
    """Opens `count` connections, sends one request on each, reads the answers, keeps them open."""
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(request)
        socks.append(s)
    for s in socks:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                raise RuntimeError("connection closed before the answer")
            data += chunk
    return socks


def requests_seen(admin):
    """Requests hookgate has answered, from its own counter."""
    import urllib.request
    text = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("hookgate_requests_total{"))


def flood(port, admin, count, body_file, header, value, limit_s=300):
    """Requests from `count` distinct addresses (one new X-Forwarded-For per request), then stop:
    wrk is ended as soon as hookgate has counted that many requests, or after `limit_s`."""
    base = requests_seen(admin)
    env = dict(os.environ, BODY_FILE=str(body_file), SIG_HEADER=header, SIG_VALUE=value,
               XFF_FLOOD="1")
    cmd = ["taskset", "-c", "0,1", "wrk", "-t2", "-c64", f"-d{limit_s}s", "--timeout", "5s",
           "-s", str(BENCH / "post.lua"), f"http://127.0.0.1:{port}/webhooks/mediaconvert"]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + limit_s + 10
    seen = 0
    try:
        while time.monotonic() < deadline and p.poll() is None:
            seen = requests_seen(admin) - base
            if seen >= count:
                break
            time.sleep(0.5)
    finally:
        p.terminate()
        p.wait(timeout=30)
    return int(requests_seen(admin) - base)


def memory(work, backend_port, body_file, header, value, flood_count):
    port, admin = free_port(), free_port()
    cfg = hookgate_config(work, port, admin, backend_port)
    proc = start_hookgate(cfg, cpu="0,1", threads=2)
    try:
        wait_port(port)
        wait_port(admin)
        body = body_file.read_bytes()
        req = (f"POST /webhooks/mediaconvert HTTP/1.1\r\nHost: x\r\n{header}: {value}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
        hold_connections(port, 1, req)[0].close()
        time.sleep(0.5)
        idle = rss_kib(proc.pid)
        # Connected, nothing sent yet: what a connection costs before its first request.
        socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(10_000)]
        time.sleep(0.5)
        unused = rss_kib(proc.pid)
        for s in socks:
            s.close()
        time.sleep(1.0)
        socks = hold_connections(port, 10_000, req)
        time.sleep(0.5)
        with_conns = rss_kib(proc.pid)
        for s in socks:
            s.close()
        time.sleep(1.0)
        after_close = rss_kib(proc.pid)
        before_flood = rss_kib(proc.pid)
        t0 = time.monotonic()
        sent = flood(port, admin, flood_count, body_file, header, value)
        flood_secs = time.monotonic() - t0
        after_flood = rss_kib(proc.pid)
        return {"idle_mib": idle / 1024, "unused_10k_mib": unused / 1024,
                "conns_10k_mib": with_conns / 1024,
                "after_close_mib": after_close / 1024, "before_flood_mib": before_flood / 1024,
                "after_flood_mib": after_flood / 1024, "flood_requests": sent,
                "flood_seconds": flood_secs}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def chart(results, conns_list, out_png):
    data = out_png.with_suffix(".dat")
    with open(data, "w") as f:
        f.write("conns direct nginx hookgate\n")
        for c in conns_list:
            row = [results[c][k]["rps"] for k in ("direct", "nginx", "hookgate")]
            f.write(f"{c} " + " ".join(f"{v:.0f}" for v in row) + "\n")
    script = f"""
set terminal pngcairo size 900,500 noenhanced
set output '{out_png}'
set title 'requests/s, 1.5 KB signed POST (median of rounds; higher is better)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key outside top center horizontal
set ylabel 'requests/s'
set xlabel 'connections'
set yrange [0:*]
plot '{data}' using 2:xtic(1) title 'direct to backend', '' using 3 title 'nginx proxy_pass', '' using 4 title 'hookgate (verify + schema + limits)'
"""
    r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if r.returncode != 0:
        # pngcairo is missing from some gnuplot builds; the plain png terminal is always there.
        r = subprocess.run(["gnuplot"], input=script.replace("pngcairo", "png"), text=True,
                           capture_output=True)
    if r.returncode != 0:
        log(f"chart not written: {r.stderr.strip()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--conns", default="16,128")
    ap.add_argument("--quick", action="store_true", help="1 round of 3 s: a smoke run")
    ap.add_argument("--warmup", type=int, default=1, metavar="SECONDS",
                    help="seconds of load per contestant before the rounds (at the largest --conns):"
                         " long enough to fill a journal's ring measures its steady state")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--rate", type=int, default=5000,
                    help="requests per second of the fixed-rate latency run (oha); 0: none")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--flood", type=int, default=1_000_000, help="distinct addresses in the flood")
    ap.add_argument("--out", default=str(BENCH / "results"))
    ap.add_argument("--extra", default="", metavar="YAML",
                    help="top-level YAML appended to hookgate's config (not the baseline's), "
                         "e.g. 'journal: {capture_body: false}'")
    ap.add_argument("--baseline", metavar="BIN",
                    help="another hookgate binary (e.g. an older build, or this one) as a fourth "
                         "contestant, same config, same rounds: an A/B in one run")
    ap.add_argument("--baseline-extra", default="", metavar="YAML",
                    help="top-level YAML appended to the baseline's config, e.g. "
                         "'journal: {enabled: false}' with --baseline target/release/hookgate. "
                         "In --extra and --baseline-extra, {work} is the run's scratch directory")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.duration = 1, 3
    conns_list = [int(c) for c in args.conns.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    ensure_tools()
    oha_bin = ensure_oha() if args.rate else None
    if not args.no_build:
        log("cargo build --release")
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
        subprocess.run(["cargo", "build", "--release", "--quiet", "--example", "floor"], cwd=ROOT,
                       check=True)

    work = Path(tempfile.mkdtemp(prefix="hookgate-bench-"))
    procs = []
    try:
        backend, proxy, hg, hg_admin = free_port(), free_port(), free_port(), free_port()
        procs.append(start_nginx(work, "backend", f"""
  server {{ listen 127.0.0.1:{backend} backlog=4096; location / {{ return 200 '{{"status":"ok"}}'; }} }}""",
                                 LOAD_CPU))
        procs.append(start_nginx(work, "proxy", f"""
  upstream backend {{ server 127.0.0.1:{backend}; keepalive 256; }}
  server {{
    listen 127.0.0.1:{proxy} backlog=4096;
    client_max_body_size 1m;
    location / {{
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}""", PROXY_CPU))
        # The same job in nginx: the HMAC checked in Lua (bench/lua/webhook_hmac.lua).
        lua = free_port()
        os.environ["WEBHOOK_SECRET"] = SECRET
        procs.append(start_nginx(work, "lua", f"""
  lua_package_path "{BENCH}/lua/?.lua;;";
  upstream backend {{ server 127.0.0.1:{backend}; keepalive 256; }}
  server {{
    listen 127.0.0.1:{lua} backlog=4096;
    client_max_body_size 1m;
    client_body_buffer_size 1m;
    location / {{
      access_by_lua_block {{ require("webhook_hmac")() }}
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}""", PROXY_CPU, main=f"load_module {LUA_MODULE.replace('ngx_http_lua', 'ndk_http')};\n"
                         f"load_module {LUA_MODULE};\nenv WEBHOOK_SECRET;"))
        body_file = work / "body.json"
        size = make_body(body_file)
        header, value = sign(body_file)
        cfg = hookgate_config(work, hg, hg_admin, backend,
                              extra=args.extra.replace("{work}", str(work)))
        procs.append(start_hookgate(cfg))
        hv, hv_admin = free_port(), free_port()
        procs.append(start_hookgate(hookgate_config(work, hv, hv_admin, backend, name="verify",
                                                    checks=False)))
        # The floor: the least a verifying hyper proxy does (bench/floor.rs).
        fl = free_port()
        procs.append(subprocess.Popen(["taskset", "-c", PROXY_CPU, str(FLOOR), str(fl),
                                       f"127.0.0.1:{backend}", SECRET],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        # CPU time per request of the proxy under test: the steadiest figure on a shared machine.
        pids = {"nginx": procs[1].pid, "nginx+lua": procs[2].pid, "hookgate": procs[3].pid,
                "verify-only": procs[4].pid, "floor": procs[5].pid}
        for p in (backend, proxy, lua, hg, hv, fl):
            wait_port(p)
        if args.baseline:
            base, base_admin = free_port(), free_port()
            base_cfg = hookgate_config(work, base, base_admin, backend, name="baseline",
                                       extra=args.baseline_extra.replace("{work}", str(work)))
            procs.append(start_hookgate(base_cfg, binary=Path(args.baseline).resolve()))
            pids["baseline"] = procs[-1].pid
            wait_port(base)
        env = {"BODY_FILE": str(body_file), "SIG_HEADER": header, "SIG_VALUE": value}
        urls = {
            "direct": f"http://127.0.0.1:{backend}/webhooks/mediaconvert",
            "nginx": f"http://127.0.0.1:{proxy}/webhooks/mediaconvert",
            "nginx+lua": f"http://127.0.0.1:{lua}/webhooks/mediaconvert",
            "hookgate": f"http://127.0.0.1:{hg}/webhooks/mediaconvert",
            "verify-only": f"http://127.0.0.1:{hv}/webhooks/mediaconvert",
            "floor": f"http://127.0.0.1:{fl}/webhooks/mediaconvert",
        }
        if args.baseline:
            urls["baseline"] = f"http://127.0.0.1:{base}/webhooks/mediaconvert"
        # Every verifying contestant must refuse a forgery before it is timed.
        for name in ("nginx+lua", "hookgate", "verify-only", "floor"):
            status = forged_status(urls[name], body_file, header)
            if status != 401:
                raise RuntimeError(f"{name} answered {status} to a forged signature, not 401")
        # Warm-up, and a check that every contestant answers 200 to the signed body.
        for name, url in urls.items():
            r = wrk(url, 4, 1, env)
            if r["errors"]:
                raise RuntimeError(f"{name}: {r['errors']} errors in warm-up: check its setup")
        if args.warmup > 1:
            for name, url in urls.items():
                wrk(url, max(conns_list), args.warmup, env)
        log(f"body {size} bytes; {args.rounds} rounds x {args.duration}s; conns {conns_list}")

        runs = {c: {k: [] for k in urls} for c in conns_list}
        noisy = 0
        for rnd in range(args.rounds):
            for c in conns_list:
                order = list(urls) if rnd % 2 == 0 else list(reversed(urls))
                for name in order:
                    s0, t0 = steal(), time.monotonic()
                    c0 = cpu_seconds(pids[name]) if name in pids else None
                    r = wrk(urls[name], c, args.duration, env)
                    if c0 is not None:
                        r["cpu_us"] = (cpu_seconds(pids[name]) - c0) / max(1, r["requests"]) * 1e6
                    st = (steal() - s0) / max(0.01, time.monotonic() - t0) / os.sysconf("SC_CLK_TCK") / 2
                    r["steal"] = st
                    noisy += st > 0.05
                    runs[c][name].append(r)
                    cpu = f"  cpu/req {r['cpu_us']:.1f} us" if "cpu_us" in r else ""
                    log(f"round {rnd + 1} c={c} {name:8s} {r['rps']:9.0f} req/s  p99 {r['p99']:.2f} ms"
                        f"  errors {r['errors']}  steal {st:.0%}{cpu}")

        med = {c: {k: {m: statistics.median(x.get(m, 0) for x in v)
                       for m in ("rps", "p50", "p99", "p999", "cpu_us")}
                   | {"errors": sum(x["errors"] for x in v)}
                   for k, v in runs[c].items()} for c in conns_list}
        lines = ["| conns | contestant | req/s | p50 ms | p99 ms | p99.9 ms | errors | proxy CPU/req us |",
                 "|---|---|---|---|---|---|---|---|"]
        for c in conns_list:
            for k in urls:
                m = med[c][k]
                cpu = f"{m['cpu_us']:.1f}" if m["cpu_us"] else "-"
                lines.append(f"| {c} | {k} | {m['rps']:.0f} | {m['p50']:.2f} | {m['p99']:.2f} | "
                             f"{m['p999']:.2f} | {m['errors']} | {cpu} |")
        lines += ["", "| conns | ratio | req/s (median of rounds; per round) | p99 | CPU per request |",
                  "|---|---|---|---|---|"]
        for c in conns_list:
            for a, b in (("hookgate", "nginx+lua"), ("verify-only", "nginx"), ("hookgate", "nginx"),
                         ("floor", "nginx"), ("verify-only", "floor"), ("hookgate", "floor")):
                ratios = [x["rps"] / y["rps"] for x, y in zip(runs[c][a], runs[c][b])]
                p99r = med[c][a]["p99"] / max(1e-9, med[c][b]["p99"])
                cpu = med[c][a]["cpu_us"] / max(1e-9, med[c][b]["cpu_us"])
                lines.append(f"| {c} | {a} / {b} | {statistics.median(ratios):.2f} "
                             f"({', '.join(f'{x:.2f}' for x in ratios)}) | {p99r:.2f} | {cpu:.2f} |")
        if args.baseline:
            lines += ["", "| conns | hookgate/baseline req/s | hookgate/baseline CPU per request |",
                      "|---|---|---|"]
            for c in conns_list:
                ratios = [h["rps"] / b["rps"] for h, b in zip(runs[c]["hookgate"], runs[c]["baseline"])]
                cpu = med[c]["hookgate"]["cpu_us"] / max(1e-9, med[c]["baseline"]["cpu_us"])
                lines.append(f"| {c} | {statistics.median(ratios):.2f} (rounds: "
                             f"{', '.join(f'{x:.2f}' for x in ratios)}) | {cpu:.2f} |")
        if noisy:
            lines.append(f"\n{noisy} run(s) saw more than 5% CPU steal: the machine was shared; "
                         "compare ratios, not absolute figures.")
        fixed = {}
        if args.rate:
            log(f"fixed rate: {args.rate} req/s for {args.duration} s each (oha, latency-corrected)")
            for name in ("nginx", "nginx+lua", "floor", "verify-only", "hookgate"):
                fixed[name] = oha(oha_bin, urls[name], args.rate, args.duration, body_file, header,
                                  value)
            lines += ["", f"| at {args.rate} req/s (oha, latency-corrected, 64 connections) "
                          "| p50 ms | p99 ms | p99.9 ms | errors |", "|---|---|---|---|---|"]
            for name, r in fixed.items():
                lines.append(f"| {name} | {r['p50']:.2f} | {r['p99']:.2f} | {r['p999']:.2f} | "
                             f"{r['errors']} |")
            lines.append(f"\nhookgate / nginx+lua p99 at {args.rate} req/s: "
                         f"{fixed['hookgate']['p99'] / max(1e-9, fixed['nginx+lua']['p99']):.2f}")
        mem = None
        if not args.no_memory:
            body = body_file.read_bytes()
            req = (f"POST /webhooks/mediaconvert HTTP/1.1\r\nHost: x\r\n{header}: {value}\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                   ).encode() + body
            ports = {"nginx": proxy, "nginx+lua": lua, "hookgate": hg, "verify-only": hv,
                     "floor": fl}
            lines += ["", "| per idle keep-alive connection, after one forwarded request "
                      "(5,000 open) | KiB |", "|---|---|"]
            for name, port in ports.items():
                lines.append(f"| {name} | {kept_alive_kib(pids[name], port, req):.1f} |")
            log("memory: idle, 10,000 idle keep-alive connections, address flood")
            mem = memory(work, backend, body_file, header, value, args.flood)
            lines += ["", "| hookgate memory | RSS MiB |", "|---|---|",
                      f"| idle | {mem['idle_mib']:.1f} |",
                      f"| 10,000 open connections, no request sent yet | {mem['unused_10k_mib']:.1f} |",
                      f"| 10,000 idle keep-alive connections (one request each) | {mem['conns_10k_mib']:.1f} |",
                      f"| after they closed | {mem['after_close_mib']:.1f} |",
                      f"| before the address flood | {mem['before_flood_mib']:.1f} |",
                      f"| after {mem['flood_requests']:,} requests from distinct addresses "
                      f"({mem['flood_seconds']:.0f} s) | {mem['after_flood_mib']:.1f} |"]
        table = "\n".join(lines)
        print(table)
        (out / "results.md").write_text(table + "\n")
        (out / "results.json").write_text(json.dumps({"runs": runs, "median": med, "memory": mem,
                                                      "fixed_rate": fixed, "body_bytes": size},
                                                     indent=2))
        chart(med, conns_list, out / "results.png")
        log(f"wrote {out}/results.md, results.json, results.png")
    finally:
        stop(procs, work)


if __name__ == "__main__":
    main()
