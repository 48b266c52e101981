#!/usr/bin/env python3
"""Checks that the deployment files agree with the programs they run.

    check_manifests.py --server build/server/fastdiss-server --train build/trainer/fastdiss-train

Parses every YAML file under deploy/ and docker/ (and the Dockerfiles), then checks, against the
real binaries' config keys (from their --help) and against each other:
- every "--set key=value" in a container's args is a key the program takes, and every config file
  mounted or baked in loads (fastdiss-server --print-config);
- the Deployment's container ports, gRPC probes, Service, ServiceMonitor, HPA, PDB, Prometheus and
  compose files use the ports and metric names the server's config and code use;
- terminationGracePeriodSeconds outlasts the preStop pause plus server.drain_grace_seconds;
- the training Job's workers, rendezvous address and port, volumes and paths fit together.
Exits 1 with every disagreement listed.
"""
import argparse
import pathlib
import re
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
problems = []


def problem(where, message):
    problems.append(f"{where}: {message}")


def config_keys(help_text):
    """Dotted keys of the commented YAML config that --help prints (after the prose)."""
    keys, stack = set(), []
    for line in help_text.splitlines():
        m = re.match(r"^( *)([A-Za-z0-9_-]+):(.*)$", line)
        if not m:
            continue
        indent = len(m.group(1)) // 2
        stack = stack[:indent] + [m.group(2)]
        if m.group(3).strip():
            keys.add(".".join(stack))
    return keys


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def flatten(tree, prefix=""):
    out = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def set_args(args):
    """The key=value pairs of --set flags in an argument list."""
    pairs = []
    for i, a in enumerate(args):
        if a == "--set" and i + 1 < len(args):
            pairs.append(args[i + 1].split("=", 1))
        elif a.startswith("--set="):
            pairs.append(a[len("--set="):].split("=", 1))
    return pairs


def check_keys(where, args, keys, program):
    for key, _ in set_args(args):
        if key not in keys and not re.match(r"^models\.[A-Za-z0-9_-]+\.(checkpoint|device)$", key):
            problem(where, f"--set {key}: {program} has no such config key")


def check_server_config(where, path, server):
    result = subprocess.run([server, "--config", str(path), "--print-config"], capture_output=True, text=True)
    if result.returncode != 0:
        problem(where, f"{path} does not load: {result.stderr.strip()}")
    return flatten(yaml.safe_load(open(path)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--train", required=True)
    a = parser.parse_args()
    server_keys = config_keys(subprocess.run([a.server, "--help"], capture_output=True, text=True, check=True).stdout)
    train_keys = config_keys(subprocess.run([a.train, "--help"], capture_output=True, text=True, check=True).stdout)
    for needed in ("server.port", "server.metrics_port", "server.drain_grace_seconds"):
        if needed not in server_keys:
            problem("fastdiss-server --help", f"no {needed}; cannot check against it")
    metric_names = set(re.findall(r'Name\("(fastdiss_[a-z_]+)"\)', (ROOT / "server/metrics.cc").read_text()))

    # --- the server's Kubernetes base ---
    base = ROOT / "deploy/base"
    config = check_server_config("deploy/base", base / "server.yaml", a.server)
    grpc_port, metrics_port = config["server.port"], config["server.metrics_port"]
    kustomization = load_all(base / "kustomization.yaml")[0]
    docs = {}
    for name in kustomization["resources"]:
        for d in load_all(base / name):
            docs[(d["kind"], d["metadata"]["name"])] = (name, d)
    generated = [g["name"] for g in kustomization.get("configMapGenerator", [])]

    where, deployment = docs[("Deployment", "fastdiss-server")]
    pod = deployment["spec"]["template"]
    pod_labels = pod["metadata"]["labels"]
    if not all(pod_labels.get(k) == v for k, v in deployment["spec"]["selector"]["matchLabels"].items()):
        problem(where, "the selector does not match the pod template's labels")
    container = pod["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    if ports.get("grpc") != grpc_port:
        problem(where, f"container port grpc {ports.get('grpc')} != server.port {grpc_port}")
    if ports.get("metrics") != metrics_port:
        problem(where, f"container port metrics {ports.get('metrics')} != server.metrics_port {metrics_port}")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        spec = container.get(probe)
        if not spec or "grpc" not in spec:
            problem(where, f"{probe} is not a gRPC health probe")
        elif spec["grpc"]["port"] != grpc_port:
            problem(where, f"{probe} probes port {spec['grpc']['port']}, the server listens on {grpc_port}")
        elif spec["grpc"].get("service", "") not in ("", "fastdiss.v1.Generator"):
            problem(where, f"{probe} asks about service {spec['grpc']['service']}, which the server does not report")
    live = container["livenessProbe"]
    if live["periodSeconds"] * live["failureThreshold"] <= config["server.drain_grace_seconds"]:
        problem(where, "the liveness probe would kill a pod that is still draining")
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    pause = int(pre_stop[1]) if pre_stop[0] == "sleep" else 0
    grace = pod["spec"]["terminationGracePeriodSeconds"]
    if grace <= pause + config["server.drain_grace_seconds"]:
        problem(where, f"terminationGracePeriodSeconds {grace} <= preStop {pause} s + drain {config['server.drain_grace_seconds']} s")
    args = container["args"]
    check_keys(where, args, server_keys, "fastdiss-server")
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    config_path = args[args.index("--config") + 1]
    mount = next((n for n, p in mounts.items() if config_path.startswith(p + "/")), None)
    if mount is None or volumes[mount].get("configMap", {}).get("name") not in generated:
        problem(where, f"--config {config_path} is not in the mounted config map")
    elif pathlib.PurePath(config_path).name != "server.yaml":
        problem(where, f"--config {config_path}: the config map holds server.yaml")
    if not pod["spec"]["securityContext"].get("runAsNonRoot") or not container["securityContext"].get("readOnlyRootFilesystem"):
        problem(where, "must run as non-root with a read-only root filesystem")
    for kind in ("requests", "limits"):
        if kind not in container.get("resources", {}):
            problem(where, f"no resource {kind}")

    where, service = docs[("Service", "fastdiss-server")]
    if not all(pod_labels.get(k) == v for k, v in service["spec"]["selector"].items()):
        problem(where, "the selector does not match the server pods")
    service_ports = {p["name"]: p for p in service["spec"]["ports"]}
    for name, p in service_ports.items():
        if p["targetPort"] not in ports and p["targetPort"] not in ports.values():
            problem(where, f"port {name} targets {p['targetPort']}, which the container does not have")
    where, monitor = docs[("ServiceMonitor", "fastdiss-server")]
    for endpoint in monitor["spec"]["endpoints"]:
        if endpoint["port"] not in service_ports:
            problem(where, f"scrapes port {endpoint['port']}, which the Service does not name")
        if endpoint.get("path", "/metrics") != "/metrics":
            problem(where, f"scrapes {endpoint['path']}; the server serves /metrics")
    where, hpa = docs[("HorizontalPodAutoscaler", "fastdiss-server")]
    if hpa["spec"]["scaleTargetRef"]["name"] != deployment["metadata"]["name"]:
        problem(where, "scales another Deployment")
    kinds = {m["type"] for m in hpa["spec"]["metrics"]}
    if not {"Resource", "Pods"} <= kinds:
        problem(where, "must scale on CPU and on the waiting-requests metric")
    for m in hpa["spec"]["metrics"]:
        if m["type"] == "Pods" and m["pods"]["metric"]["name"] not in metric_names:
            problem(where, f"metric {m['pods']['metric']['name']} is not one the server exports")
    where, adapter = docs[("ConfigMap", "fastdiss-prometheus-adapter-rules")]
    rules = yaml.safe_load(adapter["data"]["rules.yaml"])["rules"]
    for rule in rules:
        series = re.match(r"([a-z_]+)", rule["seriesQuery"]).group(1)
        if series not in metric_names:
            problem(where, f"rule for {series}, which the server does not export")
    where, pdb = docs[("PodDisruptionBudget", "fastdiss-server")]
    if not all(pod_labels.get(k) == v for k, v in pdb["spec"]["selector"]["matchLabels"].items()):
        problem(where, "the selector does not match the server pods")

    # --- overlays ---
    for overlay in ("cpu", "gpu", "tls"):
        k = load_all(ROOT / f"deploy/overlays/{overlay}/kustomization.yaml")[0]
        for patch in k.get("patches", []):
            for d in load_all(ROOT / f"deploy/overlays/{overlay}" / patch["path"]):
                pod_spec = d["spec"]["template"]["spec"]
                for c in pod_spec.get("containers", []):
                    where = f"deploy/overlays/{overlay}/{patch['path']}"
                    check_keys(where, c.get("args", []), server_keys, "fastdiss-server")
                    # Every file a tls.* key or a probe's --tls-* flag names lies in a mounted volume.
                    mounts = [m["mountPath"] for m in c.get("volumeMounts", [])]
                    files = [v for k_, v in set_args(c.get("args", [])) if k_.startswith("tls.")]
                    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                        command = (c.get(probe) or {}).get("exec", {}).get("command", [])
                        files += [command[i + 1] for i, a in enumerate(command[:-1])
                                  if a in ("--tls-ca", "--tls-cert", "--tls-key")]
                        if command and f"127.0.0.1:{grpc_port}" not in command:
                            problem(where, f"{probe} does not call the server's port {grpc_port}")
                    for f in files:
                        if not any(f.startswith(m + "/") for m in mounts):
                            problem(where, f"{f} is in no mounted volume")

    # --- the training Job ---
    training = ROOT / "deploy/training"
    tdocs = {}
    for name in load_all(training / "kustomization.yaml")[0]["resources"]:
        for d in load_all(training / name):
            tdocs[(d["kind"], d["metadata"]["name"])] = (name, d)
    where, job = tdocs[("Job", "fastdiss-train")]
    spec = job["spec"]
    tpod = spec["template"]["spec"]
    c = tpod["containers"][0]
    check_keys(where, c["args"], train_keys, "fastdiss-train")
    env = {e["name"]: e for e in c["env"]}
    world = int(env["WORLD_SIZE"]["value"])
    if spec.get("completionMode") != "Indexed" or spec["completions"] != world or spec["parallelism"] != world:
        problem(where, f"an Indexed Job with completions = parallelism = WORLD_SIZE ({world}) is needed")
    if "job-completion-index" not in env["RANK"].get("valueFrom", {}).get("fieldRef", {}).get("fieldPath", ""):
        problem(where, "RANK must come from the job completion index")
    _, headless = tdocs[("Service", tpod["subdomain"])]
    if headless["spec"].get("clusterIP") != "None":
        problem(where, "the rendezvous Service must be headless")
    if headless["spec"]["selector"].get("job-name") != job["metadata"]["name"]:
        problem(where, "the headless Service does not select the Job's pods")
    if env["MASTER_ADDR"]["value"] != f"{job['metadata']['name']}-0.{tpod['subdomain']}":
        problem(where, f"MASTER_ADDR {env['MASTER_ADDR']['value']} is not worker 0's name")
    if int(env["MASTER_PORT"]["value"]) not in [p["port"] for p in headless["spec"]["ports"]]:
        problem(where, "MASTER_PORT is not a port of the headless Service")
    tmounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    tvolumes = {v["name"]: v for v in tpod["volumes"]}
    claims = {d["metadata"]["name"] for (kind, _), (_, d) in tdocs.items() if kind == "PersistentVolumeClaim"}
    for name, v in tvolumes.items():
        claim = v.get("persistentVolumeClaim", {}).get("claimName")
        if claim and claim not in claims:
            problem(where, f"volume {name} claims {claim}, which is not defined")
    for key, value in set_args(c["args"]):
        paths = re.findall(r"(/[^,\]\s]+)", value)
        for path in paths:
            if not any(path.startswith(m + "/") for m in tmounts.values()):
                problem(where, f"--set {key}: {path} is on no mounted volume")
    out_dir = dict(set_args(c["args"])).get("train.output_dir", "")
    out_mount = next((n for n, m in tmounts.items() if out_dir.startswith(m + "/")), None)
    if out_mount is None or "persistentVolumeClaim" not in tvolumes[out_mount]:
        problem(where, "train.output_dir must be on a PersistentVolumeClaim")
    train_config = c["args"][c["args"].index("--config") + 1]
    if not train_config.startswith("/opt/fastdiss/configs/") or not (ROOT / "configs" / pathlib.PurePath(train_config).name).exists():
        problem(where, f"--config {train_config} is not one of configs/, which the image holds in /opt/fastdiss/configs")

    if env.get("LOCAL_RANK", {}).get("value", "0") != "0":
        problem(where, "one worker per pod: LOCAL_RANK must be 0")
    gpu_training = training / "gpu"
    gk = load_all(gpu_training / "kustomization.yaml")[0]
    if gk.get("resources") != [".."]:
        problem("deploy/training/gpu/kustomization.yaml", "the GPU training overlay must build on deploy/training")
    for patch in gk.get("patches", []):
        for d in load_all(gpu_training / patch["path"]):
            for pc in d["spec"]["template"]["spec"].get("containers", []):
                pwhere = f"deploy/training/gpu/{patch['path']}"
                check_keys(pwhere, pc.get("args", []), train_keys, "fastdiss-train")
                if dict(set_args(pc.get("args", []))).get("train.device") != "cuda":
                    problem(pwhere, "the GPU training overlay must set train.device=cuda")
                if "nvidia.com/gpu" not in pc.get("resources", {}).get("limits", {}):
                    problem(pwhere, "the GPU training overlay must ask for nvidia.com/gpu")

    # --- docker ---
    dconfig = check_server_config("docker", ROOT / "docker/server.yaml", a.server)
    dockerfile = (ROOT / "docker/Dockerfile").read_text()
    exposed = {int(p) for line in re.findall(r"^EXPOSE (.+)$", dockerfile, re.M) for p in line.split()}
    if exposed != {dconfig["server.port"], dconfig["server.metrics_port"]}:
        problem("docker/Dockerfile", f"EXPOSE {sorted(exposed)} != the config's ports")
    if f"127.0.0.1:{dconfig['server.port']}" not in dockerfile:
        problem("docker/Dockerfile", "the HEALTHCHECK does not call the gRPC port")
    if "USER " not in dockerfile or "USER root" in dockerfile:
        problem("docker/Dockerfile", "must run as a non-root user")
    compose = load_all(ROOT / "docker/compose.yaml")[0]
    published = {int(p.split(":")[1]) for p in compose["services"]["fastdiss"]["ports"]}
    if published != {dconfig["server.port"], dconfig["server.metrics_port"]}:
        problem("docker/compose.yaml", f"publishes {sorted(published)}, the server uses {dconfig['server.port']} and {dconfig['server.metrics_port']}")
    prom = load_all(ROOT / "docker/prometheus.yml")[0]
    targets = [t for job in prom["scrape_configs"] for s in job["static_configs"] for t in s["targets"]]
    if f"fastdiss:{dconfig['server.metrics_port']}" not in targets:
        problem("docker/prometheus.yml", f"does not scrape fastdiss:{dconfig['server.metrics_port']}")
    dashboard = (ROOT / "docker/grafana/dashboards/fastdiss-serving.json").read_text()
    for name in set(re.findall(r"(fastdiss_[a-z_]+?)(?:_bucket|_sum|_count)?\b", dashboard)):
        if name not in metric_names:
            problem("docker/grafana/dashboards/fastdiss-serving.json", f"queries {name}, which the server does not export")

    if problems:
        print("\n".join(problems))
        return 1
    print(f"manifests agree: {len(docs) + len(tdocs)} Kubernetes objects, docker files, "
          f"{len(server_keys)} server and {len(train_keys)} trainer keys")
    return 0


if __name__ == "__main__":
    sys.exit(main())
