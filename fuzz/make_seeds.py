#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into fuzz/seeds/<target>/.

verify: every case of tests/vectors/ (real providers' headers and bodies) in the target's
format, plus one `sign` seed per vectors file so the code behind a matching MAC is reached.
The other targets get hand-written seeds for each shape their parser knows.
Run from anywhere: python3 fuzz/make_seeds.py
"""
import base64
import json
import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parent
VECTORS = ROOT.parent / "tests" / "vectors"
SEEDS = ROOT / "seeds"


def write(target, name, data):
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / name).write_bytes(data)


def verify_seeds():
    for f in sorted(VECTORS.glob("*.json")):
        doc = json.loads(f.read_text())
        for i, case in enumerate(doc["cases"]):
            now = case.get("now") or 1700000000
            head = "".join(f"{k}: {v}\n" for k, v in case.get("headers", {}).items())
            body = base64.b64decode(case["body_b64"])
            write("verify", f"{f.stem}-{i:02d}", f"{now}\n{head}\n".encode() + body)
            if i == 0:
                write("verify", f"{f.stem}-sign", f"sign {now}\n{head}\n".encode() + body)
    zoom = b'{"event":"endpoint.url_validation","payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1700000000000}'
    write("verify", "zoom-challenge-sign", b"sign 1700000000\ncontent-type: application/json\n\n" + zoom)
    linear = b'{"action":"create","type":"Issue","webhookTimestamp":1700000000000}'
    write("verify", "linear-sign", b"sign 1700000000\n\n" + linear)
    body = b'{"id":"evt_1","type":"order.created"}'
    write("verify", "hmac-mismatch", b"1700000000\nX-Signature: sha256=" + b"ab" * 32 + b"\n\n" + body)
    write("verify", "hmac-malformed", b"1700000000\nX-Signature: sha256=" + b"AB" * 32 + b"\n\n" + body)
    write("verify", "hmac-timed", b"1700000000\nX-Ts: 1700000000\nX-Sig: " + b"A" * 86 + b"==\n\n" + body)
    write("verify", "hmac-timed-expired", b"1700000000\nX-Ts: 1600000000\nX-Sig: " + b"A" * 86 + b"==\n\n" + body)
    form = b"AccountSid=AC1&Body=hi&Body=ho&From=%2B15550001"
    write("verify", "twilio-form-sign", b"sign 1700000000\ncontent-type: application/x-www-form-urlencoded\n\n" + form)


def timestamp_seeds():
    nums = [
        (1700000000, 1700000000, 300000),
        (1700000301, 1700000000, 300000),
        (0, 2**64 - 1, 2**64 - 1),
        (2**64 - 1, 0, 0),
        (18446744073709551, 18446744073709552, 999),
    ]
    texts = ["1700000000", "0", "", "+1", "-1", " 1", "1.5", "1e9", "00017", "18446744073709551615",
             "18446744073709551616", "\u0661\u0662"]
    for i, t in enumerate(texts):
        ts, now, tol = nums[i % len(nums)]
        write("timestamp", f"ts-{i:02d}", t.encode() + b"\n" + struct.pack("<QQQ", ts, now, tol))


def client_ip_seeds():
    cases = [
        (0, "203.0.113.7"),
        (0, "6.6.6.6, 198.51.100.7, 10.0.0.5"),
        (0, "1.1.1.1\n10.1.1.1, 10.2.2.2"),
        (1, "1.2.3.4"),
        (2, "2001:db8::5, 2001:db9::1"),
        (4, "::ffff:10.0.0.9, 198.51.100.1"),
        (5, "[::1]:80, unknown"),
        (0, "garbage, 10.0.0.1"),
        (0, ",,, ,"),
        (0, "198.51.100.7,10.0.0.1,\n192.0.2.1"),
    ]
    for i, (peer, xff) in enumerate(cases):
        write("client_ip", f"xff-{i:02d}", bytes([peer]) + xff.encode())


def config_seeds():
    example = (ROOT.parent / "config.example.yaml").read_text()
    write("config", "example", example)
    write("config", "minimal", """routes:
  - name: mc
    path: /webhooks/mediaconvert
    upstream: http://127.0.0.1:3000/hooks
    verify: {scheme: mediaconvert, secrets: [{id: k, value: s}]}
""")
    write("config", "full-route", """server: {listen: 127.0.0.1:0, max_body_bytes: 512KiB, header_timeout: 500ms, trusted_proxies: [10.0.0.0/8, "::1/128"]}
admin: {listen: 127.0.0.1:0}
log: {format: pretty, level: debug}
forward: {header_prefix: X-Gw-, attestation_secret: {id: a, value: "${HOME}"}}
reload: {watch: false, interval: 1s}
routes:
  - name: gen
    path: /hooks/*
    host: Example.COM
    upstream: http://[::1]:8080/in
    timeout: 9s
    verify: {scheme: hmac, header: X-Sig, prefix: "sha256=", encoding: base64, algorithm: sha512, signed: "{header.X-Ts}.{body}", timestamp_header: X-Ts, tolerance: 5m, secrets: [{id: k, value: s}]}
    rate_limit: {per_ip: {rate: 5/10s, burst: 3, max_keys: 10, ipv6_prefix: 48}, route: {rate: 100/m}}
    schema: {builtin: mediaconvert, mode: shadow}
  - name: tw
    path: /tw
    upstream: http://127.0.0.1:1/
    verify: {scheme: twilio, public_url: "https://h.example/tw", secrets: [{id: k, env: NOPE}]}
  - name: sg
    path: /sg
    upstream: http://127.0.0.1:1/
    verify: {scheme: sendgrid, public_keys: [{id: k, value: "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"}]}
""")
    write("config", "problems", "server: {listen: nope, max_body_bytes: -1, extra: 1}\nroutes: [{name: 'a b', path: x, upstream: 'ftp://x', verify: {scheme: nope}}]\n")
    write("config", "anchors", "x: &a [1, 2]\ny: &b [*a, *a]\nz: [*b, *b]\nroutes: []\n")
    write("config", "empty", "")


def payload_seeds():
    mc = b'{"job_id":"job_1","status":"completed","progress_percentage":100,"created_at":"2024-01-15T10:30:00Z"}'
    cases = [
        ("/type", b'{"type":"order.created","id":"o1","at":"2024-01-15T10:30:00Z"}'),
        ("/type", b'{"type":"order.created","id":7}'),
        ("/type", b'{"type":"other"}'),
        ("/a~1b/0", b'{"a/b":["order.created"]}'),
        ("", b'"order.created"'),
        ("/status", mc),
        ("/x", b'{"job_id":1,"status":"failed","progress_percentage":101,"failed_at":"yesterday"}'),
        ("/type", b"not json"),
        ("/type", b"[" * 200 + b"]" * 200),
        ("/\xff", b'{"\\ud800":1}'),
    ]
    for i, (ptr, body) in enumerate(cases):
        p = ptr.encode("utf-8", "surrogateescape") if isinstance(ptr, str) else ptr
        write("payload", f"payload-{i:02d}", p + b"\n" + body)


def dedup_key_seeds():
    body = b'{"job_id":"job_1","status":"completed","n":[1,{"id":"x"}],"a/b":{"~":"t"},"u":"\\u00e9"}'
    cases = [
        ("{body./job_id}:{body./status}", "content-type: application/json\n", body),
        ("{header.X-Event-Id}", "X-Event-Id: evt_1\n", body),
        ("{header.X-Event-Id}", "X-Event-Id: a\nX-Event-Id: b\n", body),
        ("{body_sha256}", "", b"not json"),
        ("id-{body./n/1/id}-{body./a~1b/~0}", "", body),
        ("{body./missing}", "", body),
        ("{body./n}", "", body),
        ("{body./u}", "", body),
        ("", "x-delivery: d-1\n", body),
        ("", "x-delivery: " + "d" * 300 + "\n", body),
        ("", "", b""),
        ("{body.job_id}", "", body),
        ("{header.bad name}", "", body),
        ("plain", "", body),
        ("{body./job_id", "", body),
    ]
    for i, (tpl, head, b) in enumerate(cases):
        write("dedup_key", f"dedup-{i:02d}", tpl.encode() + b"\n" + head.encode() + b"\n" + b)


if __name__ == "__main__":
    verify_seeds()
    timestamp_seeds()
    client_ip_seeds()
    config_seeds()
    payload_seeds()
    dedup_key_seeds()
    for d in sorted(SEEDS.iterdir()):
        print(f"{d.name}: {len(list(d.iterdir()))} seeds")
