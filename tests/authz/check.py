"""Envoy's ext_authz gRPC client, from Envoy's own API definitions (envoy-data-plane) and
grpclib: what tests/it/authz.rs uses to ask hookgate's authz listener, as Envoy would.

Reads one JSON object from stdin: {"addr": "127.0.0.1:9191", "checks": [check...]}, where a
check is {method, path, host, headers: [[name, value]...], body_b64, body_field: "raw_body" |
"body", header_map: bool, source: "203.0.113.7"}. Writes one JSON object per check, in order, as
a JSON list on stdout: {"code", "allowed", "headers": [[k, v, append]], "headers_to_remove",
"status", "body", "metadata"}.
"""

import asyncio
import base64
import json
import sys

import betterproto2
from grpclib.client import Channel

from envoy_data_plane.envoy.config.core.v3 import (
    Address,
    HeaderMap,
    HeaderValue,
    SocketAddress,
)
from envoy_data_plane.envoy.service.auth.v3 import (
    AttributeContext,
    AttributeContextHttpRequest,
    AttributeContextPeer,
    AttributeContextRequest,
    AuthorizationAsyncStub,
    CheckRequest,
)


def request(c):
    body = base64.b64decode(c.get("body_b64", ""))
    headers = [(k.lower(), v) for k, v in c.get("headers", [])]
    http = AttributeContextHttpRequest(
        method=c.get("method", "POST"),
        path=c["path"],
        host=c.get("host", ""),
        scheme="http",
        protocol="HTTP/1.1",
        size=len(body),
    )
    if c.get("header_map"):
        # encode_raw_headers: true sends each value as bytes, repeated names apart.
        http.header_map = HeaderMap(
            headers=[HeaderValue(key=k, raw_value=v.encode()) for k, v in headers]
        )
    else:
        # Envoy's default: a map, repeated names joined with ",".
        joined = {}
        for k, v in headers:
            joined[k] = f"{joined[k]},{v}" if k in joined else v
        # Envoy adds the pseudo-headers to the map too.
        joined[":method"] = http.method
        joined[":path"] = http.path
        joined[":authority"] = http.host
        http.headers = joined
    if c.get("body_field", "raw_body") == "raw_body":
        http.raw_body = body
    else:
        http.body = body.decode("utf-8")
    source = AttributeContextPeer(
        address=Address(
            socket_address=SocketAddress(address=c.get("source", "203.0.113.7"), port_value=40000)
        )
    )
    return CheckRequest(
        attributes=AttributeContext(
            source=source, request=AttributeContextRequest(http=http)
        )
    )


def answer(resp):
    out = {
        "code": resp.status.code if resp.status else 0,
        "allowed": False,
        "headers": [],
        "headers_to_remove": [],
        "status": None,
        "body": None,
        "metadata": {},
    }
    if resp.dynamic_metadata:
        out["metadata"] = resp.dynamic_metadata.to_dict()
    which, value = betterproto2.which_one_of(resp, "http_response")
    if which == "ok_response":
        out["allowed"] = True
        out["headers"] = [[h.header.key, h.header.value, h.append] for h in value.headers]
        out["headers_to_remove"] = list(value.headers_to_remove)
    elif which == "denied_response":
        out["status"] = int(value.status.code) if value.status else None
        out["headers"] = [[h.header.key, h.header.value, h.append] for h in value.headers]
        out["body"] = value.body
    return out


async def main():
    spec = json.load(sys.stdin)
    host, port = spec["addr"].rsplit(":", 1)
    async with Channel(host, int(port)) as channel:
        stub = AuthorizationAsyncStub(channel, timeout=10)
        results = []
        for c in spec["checks"]:
            results.append(answer(await stub.check(request(c))))
    json.dump(results, sys.stdout)


asyncio.run(main())
