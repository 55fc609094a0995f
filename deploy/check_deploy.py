"""Static checks of deploy/ that no off-the-shelf validator does.

- The Dockerfile's documented build and run commands are the README's, word for word, and agree
  with the Dockerfile (file, tag, config path, ports) and with deploy/hookgate.yaml.
- The Dockerfile is multi-stage, caches dependencies in their own layer, runs as non-root and has
  no HEALTHCHECK.
- The Kubernetes manifests run that image with a config inside a mounted ConfigMap, probe the
  admin port the config listens on, and give hookgate more time to stop than it asks for.
- The Grafana dashboard and the alert rules use only hookgate's metric names, and the dashboard
  shows every one of them.

Run by deploy/check.sh; needs PyYAML. Prints every problem, exits 1 if there is one.
"""

import json
import re
import shlex
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"

# docs/metrics.md "Metric reference", plus hookgate_config_last_reload_successful (the reload alert's gauge).
METRICS = {
    "hookgate_requests_total": "counter",
    "hookgate_verify_failures_total": "counter",
    "hookgate_key_matches_total": "counter",
    "hookgate_rate_limited_total": "counter",
    "hookgate_schema_failures_total": "counter",
    "hookgate_duplicates_total": "counter",
    "hookgate_spoofed_headers_total": "counter",
    "hookgate_request_duration_seconds": "histogram",
    "hookgate_upstream_duration_seconds": "histogram",
    "hookgate_queue_depth": "gauge",
    "hookgate_queue_oldest_age_seconds": "gauge",
    "hookgate_dead_letters": "gauge",
    "hookgate_delivery_attempts_total": "counter",
    "hookgate_config_reloads_total": "counter",
    "hookgate_config_last_reload_successful": "gauge",
    "hookgate_journal_events": "gauge",
    "hookgate_journal_dropped_total": "counter",
    "hookgate_replays_total": "counter",
    "hookgate_route_paused": "gauge",
    "hookgate_connections_refused_total": "counter",
}

problems = []


def problem(where, message):
    problems.append(f"{where}: {message}")


def documented_commands(dockerfile_text):
    """The commands under `# Build` and `# Run` in the Dockerfile's header comment."""
    found = {}
    lines = dockerfile_text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"#\s*(Build|Run)\b", line)
        if m and i + 1 < len(lines):
            found[m.group(1)] = lines[i + 1].lstrip("#").strip()
    return found


def parse_dockerfile(text):
    """Instructions as (KEYWORD, argument) with continuation lines joined."""
    out, buf = [], ""
    for line in text.splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        buf += line.rstrip("\\").rstrip() + " "
        if not line.rstrip().endswith("\\"):
            kw, _, arg = buf.strip().partition(" ")
            out.append((kw.upper(), arg.strip()))
            buf = ""
    return out


def port_of(addr):
    return int(addr.rsplit(":", 1)[1])


def check_docker():
    dockerfile = DEPLOY / "Dockerfile"
    text = dockerfile.read_text()
    readme = (ROOT / "README.md").read_text()
    readme_lines = {l.strip() for l in readme.splitlines()}
    cmds = documented_commands(text)
    for what in ("Build", "Run"):
        if what not in cmds:
            problem("deploy/Dockerfile", f"no `# {what}:` command in the header comment")
        elif cmds[what] not in readme_lines:
            problem("README.md", f"does not document the Dockerfile's {what.lower()} command: {cmds[what]}")
    if len(cmds) < 2:
        return None

    build = shlex.split(cmds["Build"])
    if build[:2] != ["docker", "build"]:
        problem("deploy/Dockerfile", "the build command is not `docker build ...`")
    if "-f" not in build or build[build.index("-f") + 1] != "deploy/Dockerfile":
        problem("deploy/Dockerfile", "the build command must use -f deploy/Dockerfile")
    if build[-1] != ".":
        problem("deploy/Dockerfile", "the build context must be the repository root (`.`)")
    tag = build[build.index("-t") + 1] if "-t" in build else None

    run = shlex.split(cmds["Run"])
    if run[:2] != ["docker", "run"] or run[-1] != tag:
        problem("deploy/Dockerfile", f"the run command must run the image the build command tags ({tag})")
    mounts = [run[i + 1] for i, a in enumerate(run) if a == "-v"]
    published = [int(run[i + 1].split(":")[-1]) for i, a in enumerate(run) if a == "-p"]

    instructions = parse_dockerfile(text)
    froms = [a for k, a in instructions if k == "FROM"]
    if len(froms) < 2:
        problem("deploy/Dockerfile", "must be multi-stage (a build stage and a runtime stage)")
    final = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM"):]
    if any(k == "HEALTHCHECK" for k, _ in instructions):
        problem("deploy/Dockerfile", "no HEALTHCHECK: Kubernetes probes the admin port")
    users = [a for k, a in final if k == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problem("deploy/Dockerfile", "the runtime stage must set a non-root USER")
    copies = [a for k, a in instructions if k == "COPY"]
    manifest_copy = next((i for i, a in enumerate(copies) if "Cargo.lock" in a), None)
    src_copy = next((i for i, a in enumerate(copies) if a.split()[0] == "src"), None)
    if manifest_copy is None or src_copy is None or manifest_copy > src_copy:
        problem("deploy/Dockerfile", "copy Cargo.toml and Cargo.lock and build dependencies before copying src/")
    for k, a in instructions:
        if k == "COPY" and a.split()[-2:-1] and a.split()[0] in ("config.yaml", "hookgate.yaml"):
            problem("deploy/Dockerfile", "the config is mounted, not copied into the image")
    entry = json.loads(next((a for k, a in final if k == "ENTRYPOINT"), "[]"))
    cmd = json.loads(next((a for k, a in final if k == "CMD"), "[]"))
    if not any(k == "COPY" and a.split()[-1] == entry[0] for k, a in final if entry):
        problem("deploy/Dockerfile", f"the ENTRYPOINT {entry} is not the binary the runtime stage copies")
    config_path = cmd[cmd.index("--config") + 1] if "--config" in cmd else None
    exposed = {int(p) for k, a in final if k == "EXPOSE" for p in a.split()}

    mounted = {m.split(":")[1]: m.split(":")[0] for m in mounts}
    if config_path not in mounted:
        problem("README.md", f"the documented run command does not mount a config at {config_path}, where CMD reads it")
    else:
        host = mounted[config_path].replace("$PWD/", "")
        config_file = ROOT / host
        if not config_file.is_file():
            problem("README.md", f"the run command mounts {host}, which is not in the repository")
        else:
            cfg = yaml.safe_load(config_file.read_text())
            ports = {port_of(cfg["server"]["listen"]), port_of(cfg["admin"]["listen"])}
            for key in ("server", "admin"):
                if not cfg[key]["listen"].startswith("0.0.0.0:"):
                    problem(host, f"{key}.listen must be 0.0.0.0:PORT to be reachable through -p")
            if set(published) != ports or exposed != ports:
                problem("deploy/Dockerfile", f"EXPOSE {sorted(exposed)} and -p {sorted(published)} must be the config's ports {sorted(ports)}")
    return tag


def check_kubernetes(tag):
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        where = f"deploy/k8s/{path.name}"
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        configmaps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
        for d in docs:
            if d["kind"] != "Deployment":
                continue
            pod = d["spec"]["template"]["spec"]
            volumes = {v["name"]: v for v in pod.get("volumes", [])}
            for c in pod["containers"]:
                if not c["image"].startswith("hookgate:"):
                    continue
                if c["image"] != tag:
                    problem(where, f"image {c['image']} is not the one the README builds ({tag})")
                args = c.get("args", [])
                config_path = args[args.index("--config") + 1]
                mount = next((m for m in c["volumeMounts"] if config_path.startswith(m["mountPath"] + "/")), None)
                if mount is None or "configMap" not in volumes[mount["name"]]:
                    problem(where, f"{config_path} is not inside a mounted ConfigMap")
                    continue
                if "subPath" in mount:
                    problem(where, "a subPath mount is never updated: reload would not see changes")
                cm = configmaps[volumes[mount["name"]]["configMap"]["name"]]
                cfg = yaml.safe_load(cm["data"][config_path[len(mount["mountPath"]) + 1:]])
                ports = {p["name"]: p["containerPort"] for p in c["ports"]}
                if ports.get("admin") != port_of(cfg["admin"]["listen"]) or not cfg["admin"]["listen"].startswith("0.0.0.0:"):
                    problem(where, "the probes' admin port must be admin.listen on 0.0.0.0")
                if port_of(cfg["server"]["listen"]) not in ports.values():
                    problem(where, "server.listen's port is not a containerPort")
                for probe in ("livenessProbe", "readinessProbe"):
                    if c.get(probe, {}).get("httpGet", {}).get("port") != "admin":
                        problem(where, f"{probe} must probe the admin port")
                grace = int(cfg["server"].get("shutdown_grace", "20s").rstrip("s"))
                pause = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
                if pod.get("terminationGracePeriodSeconds", 30) <= grace + pause:
                    problem(where, f"terminationGracePeriodSeconds must exceed preStop ({pause}s) + shutdown_grace ({grace}s)")
                if "requests" not in c.get("resources", {}):
                    problem(where, "hookgate needs resource requests")
                check_store(where, cfg, c)


def check_store(where, cfg, container):
    """Several replicas must share one store: a Deployment of more than one pod on a memory or
    redb store would dedup and limit per pod. A Redis URL comes from the environment (it may
    carry a password), set from a Secret."""
    store = cfg.get("store", {}) or {}
    if store.get("kind") != "redis":
        return
    url = str(store.get("url", ""))
    match = re.fullmatch(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", url)
    if not match:
        problem(where, "store.url must be ${VAR}, set from a Secret, not written in the ConfigMap")
        return
    env = {e["name"]: e for e in container.get("env", [])}
    var = env.get(match.group(1))
    if var is None or "secretKeyRef" not in var.get("valueFrom", {}):
        problem(where, f"store.url reads ${{{match.group(1)}}}: set it from a Secret (env valueFrom.secretKeyRef)")


def metric_names(text):
    names = set()
    for m in re.findall(r"\bhookgate_[a-z_]+", text):
        for suffix in ("_bucket", "_count", "_sum"):
            if m.endswith(suffix) and m[: -len(suffix)] in METRICS:
                m = m[: -len(suffix)]
        names.add(m)
    return names


def check_metrics():
    dashboard_text = (DEPLOY / "grafana" / "hookgate.json").read_text()
    try:
        dashboard = json.loads(dashboard_text)
    except json.JSONDecodeError as e:
        problem("deploy/grafana/hookgate.json", f"not JSON: {e}")
        return
    exprs = " ".join(
        t.get("expr", "") for p in dashboard.get("panels", []) for t in p.get("targets", [])
    )
    used = metric_names(exprs)
    for name in sorted(set(METRICS) - used):
        problem("deploy/grafana/hookgate.json", f"no panel shows {name}")
    for name in sorted(used - set(METRICS)):
        problem("deploy/grafana/hookgate.json", f"{name} is not a hookgate metric")
    alerts = (DEPLOY / "prometheus" / "alerts.yaml").read_text()
    for name in sorted(metric_names(alerts) - set(METRICS)):
        problem("deploy/prometheus/alerts.yaml", f"{name} is not a hookgate metric")


def main():
    tag = check_docker()
    check_kubernetes(tag)
    check_metrics()
    for p in problems:
        print(p)
    if problems:
        return 1
    print("deploy: Dockerfile, README commands, manifests and metric names agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
