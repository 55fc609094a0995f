#!/usr/bin/env python3
"""Runs `hookgate check` on every config shipped in deploy/: deploy/hookgate.yaml and the
`config.yaml` of each ConfigMap in deploy/k8s/, so a manifest can never ship a config the binary
refuses. Files the configs name under /var/run/secrets/hookgate/ and /etc/hookgate/tls/ are
stood in for by throwaway files in a temporary directory (a self-signed pair for TLS), and the
environment variables they read are set to placeholders.

Usage: python3 deploy/check_configs.py [path/to/hookgate]   (default: target/debug/hookgate)
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def configs():
    yield "deploy/hookgate.yaml", (ROOT / "deploy/hookgate.yaml").read_text()
    for manifest in sorted((ROOT / "deploy/k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(manifest.read_text()):
            if doc and doc.get("kind") == "ConfigMap" and "config.yaml" in doc.get("data", {}):
                yield f"{manifest.relative_to(ROOT)} ConfigMap {doc['metadata']['name']}", doc["data"]["config.yaml"]


def main():
    binary = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "target/debug/hookgate"
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        secrets, tls = tmp / "secrets", tmp / "tls"
        secrets.mkdir()
        tls.mkdir()
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-subj", "/CN=hookgate.example", "-days", "1",
                        "-keyout", str(tls / "tls.key"), "-out", str(tls / "tls.crt")],
                       check=True, capture_output=True)
        env = dict(os.environ, MEDIACONVERT_WEBHOOK_SECRET="placeholder", HOOKGATE_ADMIN_TOKEN="placeholder",
                   HOOKGATE_REDIS_URL="redis://127.0.0.1:6379/0")
        for where, text in configs():
            for line in text.splitlines():
                for prefix in ("/var/run/secrets/hookgate/",):
                    if prefix in line:
                        name = line.split(prefix, 1)[1].split("}")[0].split()[0].strip(",")
                        (secrets / name).write_text("placeholder\n")
            text = text.replace("/var/run/secrets/hookgate/", f"{secrets}/").replace("/etc/hookgate/tls/", f"{tls}/")
            path = tmp / "config.yaml"
            path.write_text(text)
            r = subprocess.run([str(binary), "check", "-c", str(path)], env=env, capture_output=True, text=True)
            if r.returncode != 0:
                failed += 1
                print(f"{where}: hookgate check refused it:\n{r.stderr}{r.stdout}", file=sys.stderr)
            else:
                print(f"{where}: ok")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
