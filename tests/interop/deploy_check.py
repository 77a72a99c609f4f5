"""Checks of the deployment files in deploy/ (tests/it/deploy.rs runs it).

- deploy/kubernetes/sidecar.yaml: every document validates against the Kubernetes OpenAPI
  schemas (kubernetes-validate, bundled schemas, strict: an unknown field is an error); then
  what a schema cannot see: the probes and the Prometheus annotations point at the admin port
  of the config, the Service targets Tollgate's proxy port and never the app, --config names
  the ConfigMap's file, every file the config names lies in a volume of the container, the
  audit directory is writable, the secrets file Tollgate reads can be read by its non-root
  user and by no one else, the grace period outlasts drain + audit flush, the security
  context. The pod's files are then laid out in a temporary directory (the init container's
  copy command run for real) and the binary given by --tollgate checks the config
  (`tollgate check`) and serves it: a request signed with the Secret's key reaches the
  upstream, an unmapped one is denied, the audit trail is written.
- deploy/grafana/tollgate-dashboard.json: valid JSON and a well-formed dashboard; every
  metric its PromQL uses is exported by a live Tollgate (--metrics-url, or --admin's
  /metrics) with the labels and label values the queries name, rate() is taken of
  counters only, and every exported tollgate_* family has a panel.
- deploy/systemd/tollgate.service: reload by SIGHUP, stop timeout beyond drain + flush, a
  dedicated user, the sandboxing; `systemd-analyze verify` and `security` where installed.
- deploy/docker/Dockerfile: a Rust builder stage and a non-root runtime stage on the same
  Debian release, the binary, ports, entrypoint; the root .dockerignore keeps target/ and
  .git out and every file the build reads in.

Prints one line per failure and `deploy: N passed, M failed`; exits non-zero on failure.
The demo banner arguments the harness passes (--proxy, --admin, TOLLGATE_BANNER) are
accepted: --proxy is used to make one request before the scrape.

    target/interop-venv/bin/python tests/interop/deploy_check.py \
        --tollgate target/debug/tollgate --metrics-url http://127.0.0.1:9901/metrics
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import tomllib
import types
import urllib.parse
from pathlib import Path

import yaml

import common
from common import CheckFailed, ensure, send_raw

ROOT = Path(__file__).resolve().parents[2]

# Tollgate's shutdown defaults ([limits] drain_timeout_seconds, audit_flush_timeout_seconds).
DEFAULT_DRAIN_SECONDS = 25
DEFAULT_FLUSH_SECONDS = 30
# Labels that Prometheus adds to every scraped series.
TARGET_LABELS = {"job", "instance"}
# Keys of the config whose values are file or directory paths.
PATH_KEYS = {"secrets_file", "file", "dir", "jwks_file", "trust_policy", "policy_file"}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description="tollgate: checks of the deployment files in deploy/")
    p.add_argument("--tollgate", default=str(ROOT / "target/debug/tollgate"), help="the tollgate binary")
    p.add_argument("--metrics-url", help="a live Tollgate's /metrics (default: --admin + /metrics)")
    p.add_argument(
        "--kubernetes-version",
        action="append",
        help="Kubernetes version(s) to validate against (default: 1.30.0 and the newest bundled)",
    )
    p.add_argument("--proxy", help="a live Tollgate's proxy URL: one request is sent before the scrape")
    p.add_argument("--admin", help="a live Tollgate's admin URL")
    p.add_argument("--banner", help="ignored (accepted like the other interop scripts)")
    p.add_argument("-v", "--verbose", action="store_true", help="print every check")
    # Other files than the shipped ones (to try a change, or to see a check fail).
    p.add_argument("--sidecar", type=Path, default=ROOT / "deploy/kubernetes/sidecar.yaml")
    p.add_argument("--dashboard", type=Path, default=ROOT / "deploy/grafana/tollgate-dashboard.json")
    p.add_argument("--unit", type=Path, default=ROOT / "deploy/systemd/tollgate.service")
    p.add_argument("--dockerfile", type=Path, default=ROOT / "deploy/docker/Dockerfile")
    p.add_argument("--dockerignore", type=Path, default=ROOT / ".dockerignore")
    return p.parse_args()


args = parse_args()
SIDECAR, DASHBOARD, UNIT, DOCKERFILE, DOCKERIGNORE = (
    args.sidecar,
    args.dashboard,
    args.unit,
    args.dockerfile,
    args.dockerignore,
)
runner = common.Runner(types.SimpleNamespace(name="deploy", args=args), "deploy")
notes: list[str] = []


def note(msg: str) -> None:
    notes.append(msg)
    print(f"note: {msg}", flush=True)


# --------------------------------------------------------------------------
# Kubernetes
# --------------------------------------------------------------------------


def load_yaml_docs(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


runner.begin("kubernetes schema")
DOCS = runner.check(f"{SIDECAR.name} parses as YAML", load_yaml_docs, SIDECAR) or []


def one(kind: str) -> dict:
    found = [d for d in DOCS if d.get("kind") == kind]
    ensure(len(found) == 1, f"want exactly one {kind} in {SIDECAR.name}, found {len(found)}")
    return found[0]


def k8s_versions() -> list[str]:
    from kubernetes_validate.utils import latest_version

    if args.kubernetes_version:
        return args.kubernetes_version
    return ["1.30.0", latest_version()]


def validate_doc(doc: dict, version: str) -> None:
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except ValidationError as e:
        path = ".".join(str(p) for p in e.path)
        raise CheckFailed(f"{path}: {e.message}") from None
    except SchemaNotFoundError as e:
        raise CheckFailed(e.message) from None


try:
    VERSIONS = k8s_versions()
except ImportError as err:
    VERSIONS = []
    missing = f"{err} (install tests/interop/requirements.txt)"
    runner.check("kubernetes-validate is installed", lambda: ensure(False, missing))
for version in VERSIONS:
    for doc in DOCS:
        name = f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
        runner.check(f"{name} is valid Kubernetes {version} (strict)", validate_doc, doc, version)
runner.check(
    "sidecar.yaml holds a ConfigMap, a Secret, a Deployment and a Service",
    lambda: [one(k) for k in ("ConfigMap", "Secret", "Deployment", "Service")],
)


class Pod:
    """The Deployment's pod template and what it refers to, resolved."""

    def __init__(self) -> None:
        self.deployment = one("Deployment")
        self.template = self.deployment["spec"]["template"]
        self.spec = self.template["spec"]
        self.containers = self.spec.get("containers", [])
        self.init_containers = self.spec.get("initContainers", [])
        self.volumes = {v["name"]: v for v in self.spec.get("volumes", [])}
        tg = [c for c in self.containers if str(c.get("image", "")).split(":")[0].endswith("tollgate")]
        ensure(len(tg) == 1, f"want one container running the tollgate image, found {len(tg)}")
        self.tollgate = tg[0]
        self.apps = [c for c in self.containers if c is not self.tollgate]
        ensure(self.apps, "no application container next to tollgate")
        argv = list(self.tollgate.get("command", [])) + list(self.tollgate.get("args", []))
        ensure(
            argv[:1] == ["serve"] and "--config" in argv, f"tollgate's args should be `serve --config FILE`, got {argv}"
        )
        self.config_path = argv[argv.index("--config") + 1]
        self.configmap = one("ConfigMap")
        self.secret = one("Secret")
        cm_mount, rel = self.mount_of(self.tollgate, self.config_path)
        vol = self.volumes[cm_mount["name"]]
        ensure("configMap" in vol, f"--config {self.config_path} is on volume {cm_mount['name']}, not a ConfigMap")
        ensure(
            vol["configMap"].get("name") == self.configmap["metadata"]["name"],
            f"volume {cm_mount['name']} mounts ConfigMap {vol['configMap'].get('name')!r}, "
            f"the file defines {self.configmap['metadata']['name']!r}",
        )
        files = configmap_files(self.configmap, vol["configMap"])
        ensure(
            rel in files, f"--config {self.config_path}: the ConfigMap has no key for {rel!r} (keys: {sorted(files)})"
        )
        self.config_text = files[rel]
        self.config = tomllib.loads(self.config_text)

    def mount_of(self, container: dict, path: str) -> tuple[dict, str]:
        """The volumeMount of `container` holding `path`, and the path inside the volume."""
        best = None
        for m in container.get("volumeMounts", []):
            mp = m["mountPath"].rstrip("/")
            if path == mp or path.startswith(mp + "/"):
                if best is None or len(mp) > len(best["mountPath"].rstrip("/")):
                    best = m
        ensure(best is not None, f"{path} is in no volume mounted into container {container['name']}")
        return best, path[len(best["mountPath"].rstrip("/")) :].lstrip("/")

    def uid(self, container: dict) -> int | None:
        sc = container.get("securityContext") or {}
        return sc.get("runAsUser", (self.spec.get("securityContext") or {}).get("runAsUser"))

    def gids(self, container: dict) -> set[int]:
        psc = self.spec.get("securityContext") or {}
        sc = container.get("securityContext") or {}
        out = {sc.get("runAsGroup", psc.get("runAsGroup"))}
        out.add(psc.get("fsGroup"))
        out.update(psc.get("supplementalGroups") or [])
        return {g for g in out if g is not None}

    def port(self, container: dict, ref) -> int:
        if isinstance(ref, int):
            return ref
        for p in container.get("ports", []):
            if p.get("name") == ref:
                return p["containerPort"]
        raise CheckFailed(f"container {container['name']} has no port named {ref!r}")

    def listener_port(self, name: str) -> int:
        addr = (self.config.get("listeners") or {}).get(
            name, {"proxy": "127.0.0.1:8080", "admin": "127.0.0.1:9901"}.get(name)
        )
        ensure(addr is not None, f"the config has no {name} listener")
        return int(addr.rsplit(":", 1)[1])


def configmap_files(cm: dict, source: dict) -> dict[str, str]:
    data = dict(cm.get("data") or {})
    for k, v in (cm.get("binaryData") or {}).items():
        data[k] = base64.b64decode(v).decode("utf-8")
    items = source.get("items")
    if items:
        return {i["path"]: data[i["key"]] for i in items}
    return data


def secret_files(secret: dict, source: dict) -> dict[str, str]:
    data = {k: base64.b64decode(v).decode("utf-8") for k, v in (secret.get("data") or {}).items()}
    data.update(secret.get("stringData") or {})
    items = source.get("items")
    if items:
        return {i["path"]: data[i["key"]] for i in items}
    return data


runner.begin("kubernetes wiring")
POD = runner.check("the Deployment runs tollgate with --config from the ConfigMap", Pod)


def config_paths(config, trail="") -> list[tuple[str, str]]:
    """(key path, value) of every file or directory path the config names."""
    out = []
    if isinstance(config, dict):
        for k, v in config.items():
            key = f"{trail}.{k}" if trail else k
            if k in PATH_KEYS and isinstance(v, str):
                out.append((key, v))
            elif k == "inline_policies" and isinstance(v, dict):
                out.extend((f"{key}.{n}", p) for n, p in v.items() if isinstance(p, str))
            else:
                out.extend(config_paths(v, key))
    elif isinstance(config, list):
        for i, v in enumerate(config):
            out.extend(config_paths(v, f"{trail}[{i}]"))
    return out


def resolve_in_pod(pod: Pod, value: str) -> str:
    return value if value.startswith("/") else os.path.normpath(os.path.join(os.path.dirname(pod.config_path), value))


if POD:
    pod = POD

    def listeners_reachable():
        for name in ("proxy", "admin"):
            addr = pod.config["listeners"][name]
            ensure(
                addr.rsplit(":", 1)[0] in ("0.0.0.0", "[::]"),
                f"listeners.{name} = {addr!r}: the Service, probes and Prometheus need 0.0.0.0",
            )
            ports = [p["containerPort"] for p in pod.tollgate.get("ports", [])]
            ensure(
                pod.listener_port(name) in ports,
                f"listeners.{name} port {pod.listener_port(name)} is not a containerPort of tollgate ({ports})",
            )

    runner.check("the proxy and admin listeners bind 0.0.0.0 on tollgate's container ports", listeners_reachable)

    def probe(kind: str, path: str):
        p = pod.tollgate.get(kind)
        ensure(p and "httpGet" in p, f"tollgate has no httpGet {kind}")
        ensure(p["httpGet"].get("path") == path, f"{kind} path {p['httpGet'].get('path')!r}, want {path}")
        port = pod.port(pod.tollgate, p["httpGet"].get("port"))
        ensure(
            port == pod.listener_port("admin"),
            f"{kind} port {port} is not the admin listener's {pod.listener_port('admin')}",
        )

    runner.check("livenessProbe: GET /healthz on the admin port", probe, "livenessProbe", "/healthz")
    runner.check("readinessProbe: GET /readyz on the admin port", probe, "readinessProbe", "/readyz")

    def scrape_annotations():
        a = (pod.template.get("metadata") or {}).get("annotations") or {}
        ensure(a.get("prometheus.io/scrape") == "true", f"prometheus.io/scrape = {a.get('prometheus.io/scrape')!r}")
        ensure(
            a.get("prometheus.io/port") == str(pod.listener_port("admin")),
            f"prometheus.io/port = {a.get('prometheus.io/port')!r}, the admin listener is {pod.listener_port('admin')}",
        )
        ensure(a.get("prometheus.io/path") == "/metrics", f"prometheus.io/path = {a.get('prometheus.io/path')!r}")

    runner.check("pod template: prometheus.io/scrape, port (admin), path annotations", scrape_annotations)

    def service_targets_proxy():
        svc = one("Service")
        sel = svc["spec"].get("selector") or {}
        labels = (pod.template.get("metadata") or {}).get("labels") or {}
        ensure(
            sel and all(labels.get(k) == v for k, v in sel.items()),
            f"Service selector {sel} does not select the pod template's labels {labels}",
        )
        proxy = pod.listener_port("proxy")
        app_ports = {urllib.parse.urlsplit(pod.config["upstream"]["url"]).port}
        for c in pod.apps:
            app_ports.update(p["containerPort"] for p in c.get("ports", []))
        for sp in svc["spec"]["ports"]:
            target = sp.get("targetPort", sp["port"])
            port = pod.port(pod.tollgate, target) if isinstance(target, str) else target
            ensure(port == proxy, f"Service port {sp['port']} targets {target!r} = {port}, not the proxy's {proxy}")
            ensure(port not in app_ports, f"Service port {sp['port']} reaches the app directly")

    runner.check("the Service selects the pod and targets only Tollgate's proxy port", service_targets_proxy)

    def app_on_loopback():
        url = urllib.parse.urlsplit(pod.config["upstream"]["url"])
        ensure(url.scheme == "http" and url.hostname == "127.0.0.1", f"upstream.url {pod.config['upstream']['url']!r}")
        for c in pod.apps:
            ensure(not c.get("ports"), f"app container {c['name']} declares ports: only Tollgate should be reachable")
        argv = " ".join(str(a) for c in pod.apps for a in list(c.get("command", [])) + list(c.get("args", [])))
        ensure(f"127.0.0.1:{url.port}" in argv, f"no app container listens on 127.0.0.1:{url.port} ({argv!r})")

    runner.check("the app listens on the pod's loopback at the upstream's port", app_on_loopback)

    def paths_in_volumes():
        for key, value in config_paths(pod.config):
            pod.mount_of(pod.tollgate, resolve_in_pod(pod, value))

    runner.check("every file the config names is in a volume of the tollgate container", paths_in_volumes)

    def audit_dir_writable():
        d = ((pod.config.get("audit") or {}).get("files") or {}).get("dir")
        ensure(d, "no [audit.files] dir")
        m, _ = pod.mount_of(pod.tollgate, resolve_in_pod(pod, d))
        vol = pod.volumes[m["name"]]
        ensure(not m.get("readOnly"), f"audit dir {d} is on a readOnly mount")
        ensure(
            "emptyDir" in vol or "persistentVolumeClaim" in vol or "ephemeral" in vol,
            f"audit dir {d} is on volume {m['name']}, which is not writable storage",
        )

    runner.check("[audit.files] dir is on a writable volume", audit_dir_writable)

    def secret_volumes():
        """Secret volumes (mounted anywhere in the pod) and their files' effective modes."""
        psc = pod.spec.get("securityContext") or {}
        out = []
        for name, vol in pod.volumes.items():
            if "secret" not in vol:
                continue
            ensure(
                vol["secret"].get("secretName") == pod.secret["metadata"]["name"],
                f"volume {name} mounts Secret {vol['secret'].get('secretName')!r}, the file defines "
                f"{pod.secret['metadata']['name']!r}",
            )
            mode = vol["secret"].get("defaultMode", 0o644)
            # The kubelet writes Secret files as root; with fsGroup it makes them root:fsGroup and
            # adds group read (read-only volumes get mode | 0440).
            effective = mode | 0o440 if psc.get("fsGroup") is not None else mode
            out.append((name, vol, mode, effective, psc.get("fsGroup")))
        ensure(out, "no volume mounts the Secret")
        return out

    def secret_modes():
        for name, vol, mode, effective, fsgroup in secret_volumes():
            ensure(mode & 0o077 == 0, f"volume {name}: defaultMode {mode:#o} lets group or others read")
            for c in pod.init_containers + pod.containers:
                if not any(m["name"] == name for m in c.get("volumeMounts", [])):
                    continue
                uid, gids = pod.uid(c), pod.gids(c)
                readable = uid == 0 or (effective & 0o040 and fsgroup in gids) or effective & 0o004
                ensure(
                    readable,
                    f"container {c['name']} (uid {uid}) cannot read volume {name}: its files are "
                    f"root-owned with mode {effective:#o}",
                )
                if c is pod.tollgate:
                    ensure(
                        effective & 0o077 == 0,
                        f"tollgate mounts Secret volume {name} whose files get mode {effective:#o} "
                        f"(fsGroup {fsgroup}): it refuses a group/other-readable secrets file",
                    )
                    ensure(
                        uid == 0,
                        f"tollgate (uid {uid}) mounts Secret volume {name}: its files are owned by "
                        "root, unreadable to a non-root user at mode 0400/0600",
                    )

    runner.check("Secret volume: defaultMode 0400/0600, readable by the containers that mount it", secret_modes)

    def grace_period():
        limits = pod.config.get("limits") or {}
        need = limits.get("drain_timeout_seconds", DEFAULT_DRAIN_SECONDS) + limits.get(
            "audit_flush_timeout_seconds", DEFAULT_FLUSH_SECONDS
        )
        got = pod.spec.get("terminationGracePeriodSeconds", 30)
        ensure(got > need, f"terminationGracePeriodSeconds {got} does not exceed drain + audit flush = {need} s")

    runner.check("terminationGracePeriodSeconds exceeds drain + audit flush", grace_period)

    def hardening():
        psc = pod.spec.get("securityContext") or {}
        ensure(psc.get("runAsNonRoot") is True, "pod securityContext.runAsNonRoot is not true")
        ensure(
            (psc.get("seccompProfile") or {}).get("type") in ("RuntimeDefault", "Localhost"),
            "pod seccompProfile is not RuntimeDefault",
        )
        for c in pod.init_containers + pod.containers:
            sc = c.get("securityContext") or {}
            ensure(pod.uid(c) not in (None, 0), f"{c['name']}: runAsUser {pod.uid(c)!r}")
            ensure(sc.get("allowPrivilegeEscalation") is False, f"{c['name']}: allowPrivilegeEscalation is not false")
            ensure(sc.get("readOnlyRootFilesystem") is True, f"{c['name']}: readOnlyRootFilesystem is not true")
            ensure(
                "ALL" in ((sc.get("capabilities") or {}).get("drop") or []), f"{c['name']}: capabilities not dropped"
            )
            ensure(not (sc.get("capabilities") or {}).get("add"), f"{c['name']}: adds capabilities")
            ensure(not sc.get("privileged"), f"{c['name']}: privileged")
            res = c.get("resources") or {}
            for part in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    ensure(r in (res.get(part) or {}), f"{c['name']}: no resources.{part}.{r}")

    runner.check("security context (non-root, read-only root, no capabilities) and resources", hardening)


# --------------------------------------------------------------------------
# The pod's files on disk, `tollgate check` and `tollgate serve`
# --------------------------------------------------------------------------


class PodFiles:
    """The pod's volumes laid out under a temporary directory."""

    def __init__(self, pod: Pod) -> None:
        self.pod = pod
        self.tmp = tempfile.TemporaryDirectory(prefix="tollgate-deploy-")
        self.root = Path(self.tmp.name)
        psc = pod.spec.get("securityContext") or {}
        for name, vol in pod.volumes.items():
            d = self.root / "volumes" / name
            d.mkdir(parents=True)
            if "configMap" in vol:
                src = vol["configMap"]
                mode = src.get("defaultMode", 0o644)
                cm = pod.configmap if src.get("name") == pod.configmap["metadata"]["name"] else None
                ensure(cm is not None, f"volume {name}: ConfigMap {src.get('name')!r} is not in the file")
                self._write(d, configmap_files(cm, src), mode)
            elif "secret" in vol:
                src = vol["secret"]
                mode = src.get("defaultMode", 0o644)
                if psc.get("fsGroup") is not None:
                    mode |= 0o440
                self._write(d, secret_files(pod.secret, src), mode)
            elif "emptyDir" in vol:
                d.chmod(0o777)
            else:
                raise CheckFailed(f"volume {name}: kind not modelled ({sorted(vol)})")

    @staticmethod
    def _write(d: Path, files: dict[str, str], mode: int) -> None:
        for rel, text in files.items():
            p = d / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text, encoding="utf-8")
            p.chmod(mode)

    def host(self, container: dict, path: str) -> Path:
        m, rel = self.pod.mount_of(container, path)
        return self.root / "volumes" / m["name"] / rel

    def rewrite(self, container: dict, text: str) -> str:
        """`text` with the container's mount paths (as whole path prefixes) replaced by their
        directories here, in one pass."""
        by_path = {
            m["mountPath"].rstrip("/"): str(self.root / "volumes" / m["name"])
            for m in container.get("volumeMounts", [])
        }
        if not by_path:
            return text
        rx = re.compile(
            r"(?<![\w./-])("
            + "|".join(re.escape(p) for p in sorted(by_path, key=len, reverse=True))
            + r")(?=/|$|[\s'\";])"
        )
        return rx.sub(lambda m: by_path[m.group(1)], text)

    def run_init_containers(self) -> None:
        for c in self.pod.init_containers:
            argv = list(c.get("command", [])) + list(c.get("args", []))
            ensure(
                len(argv) == 3 and argv[0] in ("sh", "/bin/sh") and argv[1] == "-c",
                f"init container {c['name']}: only `sh -c SCRIPT` is modelled, got {argv}",
            )
            script = self.rewrite(c, argv[2])
            p = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, timeout=30)
            ensure(p.returncode == 0, f"init container {c['name']}: `{script}` failed: {p.stderr.strip()}")

    def config_file(self) -> Path:
        """The tollgate container's config, with in-pod absolute paths made host paths."""
        pod = self.pod
        text = pod.config_text
        for key, value in config_paths(pod.config):
            if value.startswith("/"):
                new = str(self.host(pod.tollgate, value))
                text, n = re.subn(r'"' + re.escape(value) + r'"', json.dumps(new), text)
                ensure(n > 0, f"{key} = {value!r}: not found as a basic string in the config text")
        path = self.host(pod.tollgate, pod.config_path).with_name("tollgate.pod-test.toml")
        path.write_text(text, encoding="utf-8")
        return path


def tollgate_bin() -> str:
    b = os.path.abspath(args.tollgate)
    ensure(os.access(b, os.X_OK), f"--tollgate {b} is not an executable")
    return b


runner.begin("tollgate check")
FILES = None
if POD:
    FILES = runner.check("lay out the pod's volumes (ConfigMap, Secret, emptyDirs)", PodFiles, POD)
CONFIG_FILE = None
if FILES:
    runner.check("the init containers run (their mount paths mapped here)", FILES.run_init_containers)

    def secrets_file_private():
        value = POD.config.get("secrets_file")
        ensure(value, "the config names no secrets_file")
        p = FILES.host(POD.tollgate, resolve_in_pod(POD, value))
        ensure(p.exists(), f"secrets_file {value} does not exist in the pod (nothing copies the Secret there)")
        m, _ = POD.mount_of(POD.tollgate, resolve_in_pod(POD, value))
        vol = POD.volumes[m["name"]]
        ensure("secret" not in vol, f"secrets_file {value} is on Secret volume {m['name']} (root-owned files)")
        mode = p.stat().st_mode & 0o777
        ensure(mode & 0o077 == 0, f"secrets_file {value} gets mode {mode:#o}: Tollgate refuses group/other access")
        if "emptyDir" in vol:
            ensure(
                vol["emptyDir"].get("medium") == "Memory",
                f"secrets_file {value}: emptyDir {m['name']} is not in memory",
            )

    runner.check("secrets_file: written by the init container, mode without group/other bits", secrets_file_private)
    CONFIG_FILE = runner.check("the config with the pod's paths mapped here", FILES.config_file)


def tollgate_check():
    p = subprocess.run(
        [tollgate_bin(), "check", "--config", str(CONFIG_FILE)], capture_output=True, text=True, timeout=60
    )
    out = (p.stdout + p.stderr).strip()
    ensure(p.returncode == 0, f"tollgate check exit {p.returncode}:\n{out}")
    ensure(": ok" in out, f"tollgate check printed {out!r}")
    if args.verbose:
        print("     " + out, flush=True)


CHECKED = False
if CONFIG_FILE:
    CHECKED = runner.check(
        "`tollgate check` accepts the ConfigMap's config with the Secret's keys", lambda: tollgate_check() or True
    )


class Proc:
    """A background process whose stdout lines are collected."""

    def __init__(self, argv: list[str], cwd: str) -> None:
        self.log = tempfile.TemporaryFile(mode="w+")
        self.out = tempfile.TemporaryFile(mode="w+")
        self.p = subprocess.Popen(argv, cwd=cwd, stdout=self.out, stderr=self.log, stdin=subprocess.DEVNULL, text=True)

    def wait_for(self, prefix: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.out.seek(0)
            for line in self.out.read().splitlines():
                if line.startswith(prefix):
                    return line[len(prefix) :].strip()
            if self.p.poll() is not None:
                break
            time.sleep(0.05)
        raise CheckFailed(f"no `{prefix}` line (exit {self.p.poll()}); stderr:\n{self.stderr()}")

    def stderr(self) -> str:
        self.log.seek(0)
        return "\n".join(self.log.read().splitlines()[-20:])

    def stop(self) -> int | None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                return self.p.wait(timeout=DEFAULT_DRAIN_SECONDS + DEFAULT_FLUSH_SECONDS + 5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                return None
        return self.p.returncode


def serve_the_pod_config():
    """`tollgate serve` on the pod's config (loopback ports, the upstream a `tollgate echo`):
    a request signed with the Secret's key reaches the upstream as the configured user."""
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    pod = POD
    binary = tollgate_bin()
    workdir = str(FILES.root)
    echo = Proc([binary, "echo", "--listen", "127.0.0.1:0"], workdir)
    serve = None
    try:
        echo_addr = echo.wait_for("echo upstream listening on ")
        text = CONFIG_FILE.read_text(encoding="utf-8")
        upstream = pod.config["upstream"]["url"]
        ensure(json.dumps(upstream) in text, f"upstream.url {upstream!r} not found as a basic string")
        text = text.replace(json.dumps(upstream), json.dumps(f"http://{echo_addr}"))
        cfg = CONFIG_FILE.with_name("tollgate.pod-serve.toml")
        cfg.write_text(text, encoding="utf-8")
        serve = Proc(
            [binary, "serve", "--config", str(cfg), "--proxy-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"],
            workdir,
        )
        proxy = "http://" + serve.wait_for("proxy listening on ")
        admin = "http://" + serve.wait_for("admin listening on ")
        r = send_raw(admin, "GET", "/readyz")
        ensure(r.status == 200, f"/readyz: {r.brief()}")

        secrets = tomllib.loads(FILES.host(pod.tollgate, resolve_in_pod(pod, pod.config["secrets_file"])).read_text())
        user = pod.config["users"][0]
        key_id = user["access_keys"][0]["id"]
        secret = secrets["access_keys"][key_id]
        account = user.get("account") or pod.config["accounts"][0]["id"]
        region = pod.config["auth"]["regions"][0]
        service = "execute-api"
        ensure(service in pod.config["auth"]["services"], "the config does not serve execute-api")
        route = next(
            rt
            for m in pod.config.get("mappings", [])
            if m.get("service") == service
            for rt in m.get("routes", [])
            if rt.get("method", "*") in ("GET", "*")
        )
        path = re.sub(r"\{[^}]+\}", "42", route["path"])

        def signed(method: str, p: str):
            req = AWSRequest(method=method, url=proxy + p)
            botocore.auth.SigV4Auth(Credentials(key_id, secret), service, region).add_auth(req)
            return send_raw(proxy, method, p, list(req.headers.items()))

        r = send_raw(proxy, "GET", path)
        ensure(r.status == 403 and b"MissingAuthenticationToken" in r.body, f"unsigned GET {path}: {r.brief()}")
        r = signed("GET", path)
        ensure(r.status == 200, f"signed GET {path}: {r.brief()}")
        seen = r.json().get("headers", {}).get("x-tollgate-principal-arn")
        want = [f"arn:aws:iam::{account}:user{user.get('path', '/')}{user['name']}"]
        ensure(seen == want, f"upstream saw x-tollgate-principal-arn {seen}, want {want}")
        r = signed("DELETE", path)
        ensure(r.status == 403 and b"AccessDenied" in r.body, f"signed DELETE {path} (no route): {r.brief()}")
        code = serve.stop()
        ensure(code == 0, f"tollgate serve exit {code} after SIGTERM; stderr:\n{serve.stderr()}")
        audit = FILES.host(pod.tollgate, resolve_in_pod(pod, pod.config["audit"]["files"]["dir"]))
        written = [p for p in audit.rglob("*") if p.is_file()]
        ensure(written, f"no audit file under {audit} after SIGTERM")
    finally:
        if serve:
            serve.stop()
        echo.stop()


if CHECKED:
    runner.check(
        "`tollgate serve` on the pod's config: signed GET allowed, unmapped DELETE denied, audit written",
        serve_the_pod_config,
    )


# --------------------------------------------------------------------------
# Grafana
# --------------------------------------------------------------------------

runner.begin("grafana")


def load_dashboard() -> dict:
    with open(DASHBOARD, encoding="utf-8") as f:
        return json.load(f)


DASH = runner.check("tollgate-dashboard.json is valid JSON", load_dashboard)


def panels_of(d: dict) -> list[dict]:
    out = []
    for p in d.get("panels", []):
        out.append(p)
        out.extend(p.get("panels", []))
    return out


DS_REF = "${DS_PROMETHEUS}"


def dashboard_shape():
    d = DASH
    ensure(
        isinstance(d.get("schemaVersion"), int) and d["schemaVersion"] >= 36,
        f"schemaVersion {d.get('schemaVersion')!r}",
    )
    ensure(d.get("title") and d.get("uid"), "no title or uid")
    inputs = {i.get("name"): i for i in d.get("__inputs", [])}
    ensure(inputs.get("DS_PROMETHEUS", {}).get("pluginId") == "prometheus", "no DS_PROMETHEUS prometheus input")
    ids = [p.get("id") for p in panels_of(d)]
    ensure(len(ids) == len(set(ids)) and None not in ids, f"panel ids missing or repeated: {ids}")
    for p in panels_of(d):
        g = p.get("gridPos") or {}
        ensure(
            all(isinstance(g.get(k), int) for k in "xywh") and g["x"] + g["w"] <= 24,
            f"panel {p.get('title')!r}: gridPos {g}",
        )
        if p.get("type") == "row":
            continue
        ensure((p.get("datasource") or {}).get("uid") == DS_REF, f"panel {p.get('title')!r}: datasource not {DS_REF}")
        refs = [t.get("refId") for t in p.get("targets", [])]
        ensure(refs and len(refs) == len(set(refs)), f"panel {p.get('title')!r}: targets/refIds {refs}")
        for t in p["targets"]:
            ensure(t.get("expr"), f"panel {p.get('title')!r}: target {t.get('refId')} has no expr")
            ensure((t.get("datasource") or {}).get("uid") == DS_REF, f"panel {p.get('title')!r}: target datasource")
    for v in (d.get("templating") or {}).get("list", []):
        if v.get("type") == "query":
            ensure((v.get("datasource") or {}).get("uid") == DS_REF, f"variable {v.get('name')}: datasource")


def exprs_of(d: dict) -> list[tuple[str, str]]:
    out = []
    for p in panels_of(d):
        for t in p.get("targets", []):
            if t.get("expr"):
                out.append((f"{p.get('title')} [{t.get('refId')}]", t["expr"]))
    for v in (d.get("templating") or {}).get("list", []):
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if v.get("type") == "query" and q:
            out.append((f"variable ${v.get('name')}", q))
    return out


def balanced(expr: str) -> None:
    stack, quote = [], None
    pairs = {")": "(", "]": "[", "}": "{"}
    for ch in expr:
        if quote:
            if ch == quote:
                quote = None
            continue
        if ch in "\"'`":
            quote = ch
        elif ch in "([{":
            stack.append(ch)
        elif ch in ")]}":
            ensure(stack and stack.pop() == pairs[ch], f"unbalanced {ch!r} in {expr!r}")
    ensure(not stack and not quote, f"unbalanced brackets or quotes in {expr!r}")


if DASH:
    runner.check("dashboard shape: schemaVersion, DS_PROMETHEUS input, panels, targets", dashboard_shape)
    for where, expr in exprs_of(DASH):
        runner.check(f"PromQL brackets balanced: {where}", balanced, expr)


def grafana_to_promql(expr: str) -> str:
    """A dashboard expression with Grafana's variables replaced by plain PromQL."""
    expr = re.sub(r"\$__(rate_interval|interval|range)\b", "1m", expr)
    return re.sub(r"\$\{?[a-zA-Z_]\w*\}?", ".*", expr)


def promtool_parses():
    """`promtool check rules` parses every expression (as recording rules)."""
    exprs = [(w, e) for w, e in exprs_of(DASH) if not e.startswith("label_values(")]
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"tollgate_dashboard:expr_{i}", "expr": grafana_to_promql(e)}
                    for i, (_, e) in enumerate(exprs)
                ],
            }
        ]
    }
    with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
        yaml.safe_dump(rules, f)
        f.flush()
        p = subprocess.run(["promtool", "check", "rules", f.name], capture_output=True, text=True, timeout=60)
    ensure(p.returncode == 0, f"promtool check rules (exit {p.returncode}):\n{p.stdout}{p.stderr}")
    if args.verbose:
        print(f"     promtool parsed {len(exprs)} expressions", flush=True)


if DASH:
    if shutil.which("promtool"):
        runner.check("promtool parses every PromQL expression", promtool_parses)
    else:
        note("promtool is not installed: PromQL is checked for brackets, names and labels only")


def metrics_url() -> str:
    if args.metrics_url:
        return args.metrics_url
    ensure(args.admin, "need --metrics-url (or --admin) of a running tollgate")
    return args.admin.rstrip("/") + "/metrics"


METRIC_RE = re.compile(r"\btollgate_[a-zA-Z0-9_]+")


def scrape() -> dict:
    """{sample name: {"type": family type, "labels": {label: set(values)}}} of a live /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    url = urllib.parse.urlsplit(metrics_url())
    wanted = {m for _, e in exprs_of(DASH or {}) for m in METRIC_RE.findall(e)}
    if args.proxy:
        # One refused request: makes the per-outcome series and an audit record exist.
        send_raw(args.proxy, "GET", "/deploy-check")
    deadline = time.monotonic() + 5
    while True:
        r = send_raw(f"{url.scheme}://{url.netloc}", "GET", url.path or "/metrics")
        ensure(r.status == 200, f"{metrics_url()}: {r.brief()}")
        out: dict = {}
        for fam in text_string_to_metric_families(r.body.decode("utf-8")):
            for s in fam.samples:
                e = out.setdefault(s.name, {"type": fam.type, "family": fam.name, "labels": {}})
                for k, v in s.labels.items():
                    e["labels"].setdefault(k, set()).add(v)
        if wanted <= set(out) or time.monotonic() > deadline:
            return out
        time.sleep(0.2)


SCRAPE = runner.check("scrape a live tollgate's /metrics", scrape) if DASH else None

SELECTOR_RE = re.compile(r"(tollgate_[a-zA-Z0-9_]+)\s*(\{([^}]*)\})?")
MATCHER_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
GROUPING_RE = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
RATE_RE = re.compile(r"\b(rate|irate|increase)\s*\(\s*(tollgate_[a-zA-Z0-9_]+)")


@functools.lru_cache(maxsize=None)
def lazily_registered(name: str) -> bool:
    """A name not in the scrape but in the binary: a labelled metric with no series yet."""
    try:
        with open(tollgate_bin(), "rb") as f:
            return name.encode() in f.read()
    except (OSError, CheckFailed):
        return False


def expr_uses_live_metrics(expr: str) -> None:
    names = set(METRIC_RE.findall(expr))
    ensure(names, f"no tollgate_* metric in {expr!r}")
    missing = sorted(n for n in names if n not in SCRAPE)
    lazy = [n for n in missing if lazily_registered(n)]
    ensure(missing == lazy, f"not exported by tollgate: {[n for n in missing if n not in lazy]}")
    for n in lazy:
        if n not in lazy_seen:
            lazy_seen.add(n)
            note(
                f"{n} has no series in the scrape yet (a labelled metric appears at its first event); "
                "the binary does define it"
            )
    present = [n for n in names if n in SCRAPE]
    labels = set(TARGET_LABELS)
    for n in present:
        labels |= set(SCRAPE[n]["labels"])
    for group in GROUPING_RE.findall(expr):
        for label in filter(None, (x.strip() for x in group.split(","))):
            ensure(label in labels or not present, f"by/without label {label!r} is on none of {sorted(names)}")
    for name, _, body in SELECTOR_RE.findall(expr):
        if name not in SCRAPE:
            continue
        own = SCRAPE[name]["labels"]
        for label, op, value in MATCHER_RE.findall(body or ""):
            if label in TARGET_LABELS:
                continue
            ensure(label in own, f"{name} has no label {label!r} (labels: {sorted(own)})")
            if op in ("=", "!=") and "$" not in value:
                ensure(value in own[label], f"{name}{{{label}}} has no value {value!r} (values: {sorted(own[label])})")
    for fn, name in RATE_RE.findall(expr):
        if name in SCRAPE:
            t = SCRAPE[name]["type"]
            ensure(
                t == "counter" or (t == "histogram" and name.endswith(("_bucket", "_sum", "_count"))),
                f"{fn}() of {name}, a {t}",
            )
        else:
            ensure(name.endswith("_total"), f"{fn}() of {name}, not a counter")
    if "histogram_quantile" in expr:
        ensure(
            "_bucket" in expr and re.search(r"\bby\s*\([^)]*\ble\b", expr),
            f"histogram_quantile without a sum by (le) of _bucket series: {expr!r}",
        )


lazy_seen: set[str] = set()
if SCRAPE:
    for where, expr in exprs_of(DASH):
        runner.check(f"metrics, labels and values exist: {where}", expr_uses_live_metrics, expr)

    def every_family_has_a_panel():
        used = {m for _, e in exprs_of(DASH) for m in METRIC_RE.findall(e)}
        families = {SCRAPE[n]["family"] for n in SCRAPE if n.startswith("tollgate_")}
        unused = sorted(f for f in families if not any(u == f or u.startswith(f + "_") for u in used))
        ensure(not unused, f"exported families with no panel: {unused}")

    runner.check("every exported tollgate_* family has a panel", every_family_has_a_panel)


# --------------------------------------------------------------------------
# systemd
# --------------------------------------------------------------------------

runner.begin("systemd")


def parse_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        ensure(current is not None and "=" in line, f"{path.name}: cannot parse {line!r}")
        k, v = line.split("=", 1)
        current.append((k.strip(), v.strip()))
    return sections


def seconds(v: str) -> float:
    total = 0.0
    units = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600, "ms": 0.001}
    for num, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", v):
        ensure(unit in units, f"time span {v!r}")
        total += float(num) * units[unit]
    return total


UNITDATA = runner.check("tollgate.service parses", parse_unit, UNIT)


def last(section: str, key: str) -> str | None:
    vals = [v for k, v in (UNITDATA or {}).get(section, []) if k == key]
    return vals[-1] if vals else None


def all_values(section: str, key: str) -> list[str]:
    return [v for k, v in (UNITDATA or {}).get(section, []) if k == key]


def unit_checks():
    ensure(last("Service", "Type") == "simple", f"Type={last('Service', 'Type')}")
    start = last("Service", "ExecStart") or ""
    ensure(re.fullmatch(r"/\S*/tollgate serve --config \S+\.toml", start), f"ExecStart={start}")
    reload_ = last("Service", "ExecReload") or ""
    ensure(re.search(r"\bkill\b.*(-HUP|-s\s*HUP|-SIGHUP|-s\s*SIGHUP)\b.*\$MAINPID", reload_), f"ExecReload={reload_}")
    ensure(
        last("Service", "KillSignal") in (None, "SIGTERM", "TERM", "15"), f"KillSignal={last('Service', 'KillSignal')}"
    )
    stop = seconds(last("Service", "TimeoutStopSec") or "90")
    need = DEFAULT_DRAIN_SECONDS + DEFAULT_FLUSH_SECONDS
    ensure(
        stop >= 30 and stop > need,
        f"TimeoutStopSec={last('Service', 'TimeoutStopSec')}: drain + flush take up to {need} s",
    )
    ensure(last("Service", "Restart") == "on-failure", f"Restart={last('Service', 'Restart')}")
    user = last("Service", "User")
    ensure((user and user not in ("root", "0")) or last("Service", "DynamicUser") == "yes", f"User={user}")


def unit_hardening():
    want = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes"}
    for k, v in want.items():
        ensure(last("Service", k) == v, f"{k}={last('Service', k)}, want {v}")
    ensure(
        last("Service", "ProtectHome") in ("yes", "read-only", "tmpfs"), f"ProtectHome={last('Service', 'ProtectHome')}"
    )
    ensure(last("Service", "CapabilityBoundingSet") == "", "CapabilityBoundingSet= is not empty")
    rw = " ".join(all_values("Service", "ReadWritePaths")).split()
    ensure("/var/lib/tollgate" in rw, f"ReadWritePaths={rw}")


def systemd_analyze(*argv: str, unit: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["systemd-analyze", *argv, str(unit)], capture_output=True, text=True, timeout=120, cwd=unit.parent
    )


def unit_with_this_binary(tmp: str) -> Path:
    """The unit with /usr/local/bin/tollgate replaced by --tollgate (verify checks ExecStart exists)."""
    text = UNIT.read_text(encoding="utf-8").replace("/usr/local/bin/tollgate", tollgate_bin())
    p = Path(tmp) / UNIT.name
    p.write_text(text, encoding="utf-8")
    return p


def verify():
    with tempfile.TemporaryDirectory() as tmp:
        p = systemd_analyze("verify", unit=unit_with_this_binary(tmp))
        out = "\n".join(
            line for line in (p.stdout + p.stderr).splitlines() if UNIT.name in line or "error" in line.lower()
        )
        # verify exits 0 on unknown keys and bad values too: any line about the unit fails.
        ensure(p.returncode == 0 and not out, f"systemd-analyze verify (exit {p.returncode}):\n{p.stdout}{p.stderr}")


def security():
    with tempfile.TemporaryDirectory() as tmp:
        p = systemd_analyze("security", "--offline=yes", "--no-pager", unit=unit_with_this_binary(tmp))
        m = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", p.stdout + p.stderr)
        if p.returncode != 0 and not m and "offline" in (p.stderr or ""):
            note(f"systemd-analyze security --offline is not supported here: {p.stderr.strip()[:200]}")
            return
        ensure(m, f"systemd-analyze security printed no exposure level (exit {p.returncode}): {p.stderr[-500:]}")
        ensure(float(m.group(1)) <= 2.0, f"exposure {m.group(1)} (want <= 2.0, 'OK'):\n{p.stdout[-3000:]}")
        if args.verbose:
            print(f"     systemd-analyze security: exposure {m.group(1)}", flush=True)


if UNITDATA is not None:
    runner.check("reload by SIGHUP, stop timeout beyond drain + flush, Restart=on-failure, dedicated user", unit_checks)
    runner.check("sandboxing: NoNewPrivileges, ProtectSystem=strict, ReadWritePaths, no capabilities", unit_hardening)
    if shutil.which("systemd-analyze"):
        runner.check("systemd-analyze verify", verify)
        runner.check("systemd-analyze security --offline: exposure <= 2.0", security)
    else:
        note("systemd-analyze is not installed: `verify` and `security` not run")


# --------------------------------------------------------------------------
# Docker
# --------------------------------------------------------------------------

runner.begin("docker")


def parse_dockerfile(path: Path) -> list[dict]:
    """Stages: {"from", "name", "instructions": [(INSTR, args)]}."""
    text = path.read_text(encoding="utf-8")
    lines, buf = [], ""
    for raw in text.splitlines():
        s = raw.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        if buf and s.startswith("#"):
            continue
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        lines.append(buf + s)
        buf = ""
    stages = []
    for line in lines:
        instr, _, rest = line.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            m = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", rest.strip(), re.IGNORECASE)
            ensure(m, f"FROM {rest}")
            stages.append({"from": m.group(1), "name": m.group(2), "instructions": []})
        else:
            ensure(stages, f"{instr} before FROM")
            stages[-1]["instructions"].append((instr, rest.strip()))
    return stages


STAGES = runner.check("Dockerfile parses", parse_dockerfile, DOCKERFILE)


def instr(stage: dict, name: str) -> list[str]:
    return [a for i, a in stage["instructions"] if i == name]


def docker_stages():
    ensure(len(STAGES) >= 2, f"{len(STAGES)} stage(s): want a builder and a runtime stage")
    builders = [s for s in STAGES[:-1] if s["from"].startswith("rust:")]
    ensure(builders, "no stage FROM rust:*")
    b = builders[0]
    ensure(
        any(
            re.search(r"cargo build\b.*--release\b", r) and "--locked" in r and "--bin tollgate" in r
            for r in instr(b, "RUN")
        ),
        "the builder does not run `cargo build --release --locked --bin tollgate`",
    )
    rt = STAGES[-1]
    copies = instr(rt, "COPY")
    ensure(
        any(f"--from={b['name']}" in c and c.rstrip().endswith("/usr/local/bin/tollgate") for c in copies),
        f"the runtime stage does not COPY --from={b['name']} the binary to /usr/local/bin/tollgate: {copies}",
    )
    users = instr(rt, "USER")
    user = users[-1].split(":")[0] if users else ("nonroot" if rt["from"].endswith(":nonroot") else "root")
    ensure(user not in ("root", "0"), f"the runtime stage runs as {user}")
    exposed = {p.split("/")[0] for e in instr(rt, "EXPOSE") for p in e.split()}
    ensure({"8080", "9901"} <= exposed, f"EXPOSE {sorted(exposed)}")
    ensure(instr(rt, "ENTRYPOINT")[-1:] == ['["/usr/local/bin/tollgate"]'], f"ENTRYPOINT {instr(rt, 'ENTRYPOINT')}")
    ensure(instr(rt, "CMD")[-1:] == ['["serve"]'], f"CMD {instr(rt, 'CMD')}")
    # A binary linked against a newer glibc does not run on an older one: same Debian release.
    releases = {"debian12": "bookworm", "bookworm": "bookworm", "debian13": "trixie", "trixie": "trixie"}
    rel_rt = next((v for k, v in releases.items() if k in rt["from"]), None)
    rel_b = next((v for k, v in releases.items() if k in b["from"]), None)
    ensure(
        rel_rt is None or rel_b == rel_rt,
        f"builder {b['from']} (Debian {rel_b or 'release not pinned'}) vs runtime {rt['from']} ({rel_rt})",
    )


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rules (approximately): the last matching pattern wins, `!` re-includes,
    a pattern matching a directory excludes what is under it."""
    result = False
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pat in patterns:
        neg = pat.startswith("!")
        pat = pat[1:] if neg else pat
        pat = pat.strip("/")
        rx = re.escape(pat).replace(r"\*\*", "\0").replace(r"\*", "[^/]*").replace(r"\?", "[^/]").replace("\0", ".*")
        if any(re.fullmatch(rx, c) for c in candidates):
            result = not neg
    return result


def build_inputs() -> list[str]:
    """Files `cargo build --bin tollgate` reads that a context must hold."""
    files = ["Cargo.toml", "Cargo.lock", "src/main.rs", "src/lib.rs"]
    manifest = tomllib.loads((ROOT / "Cargo.toml").read_text(encoding="utf-8"))
    for kind, d in (("bench", "benches"), ("example", "examples"), ("test", "tests")):
        for t in manifest.get(kind, []):
            files.append(t.get("path") or f"{d}/{t['name']}.rs")
    for src in (ROOT / "src").rglob("*.rs"):
        for m in re.finditer(r'include_(?:str|bytes)!\(\s*"([^"]+)"', src.read_text(encoding="utf-8")):
            files.append(os.path.relpath(os.path.normpath(src.parent / m.group(1)), ROOT))
    return sorted(set(files))


def dockerignore():
    ensure(DOCKERIGNORE.exists(), "no .dockerignore at the repository root (the build context)")
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    for p in ("target/debug/tollgate", "fuzz/target/x", ".git/HEAD", "config/tollgate.secrets.toml"):
        ensure(ignored(p, patterns), f".dockerignore lets {p} into the build context")
    kept = [f for f in build_inputs() if ignored(f, patterns)]
    ensure(not kept, f".dockerignore leaves out files the build needs: {kept}")
    missing = [f for f in build_inputs() if not (ROOT / f).exists()]
    ensure(not missing, f"build inputs missing from the repository: {missing}")


if STAGES:
    runner.check("builder stage (rust, cargo build --release --locked) and non-root runtime stage", docker_stages)
runner.check(".dockerignore keeps target/, fuzz/, .git and secrets out, every build input in", dockerignore)
if shutil.which("docker"):
    p = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        note("docker has no daemon here: the image is not built")
else:
    note("docker is not installed: the image is not built")

runner.finish(min_passed=20)
