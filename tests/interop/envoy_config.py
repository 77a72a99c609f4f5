"""Render deploy/envoy/grpc.yaml or http.yaml with other ports (for tests).

The shipped configs use a fixed layout; this replaces each port by exact
`port_value: N` text substitution (no YAML parser) and fails if a port is
not in the file:

    listener 10000, admin 9911, app 10001, grpc 9191, http 9192, api 8081

A config holds only one of the two authz ports (grpc.yaml 9191, http.yaml
9192): the other one may be given too and is then ignored, so a caller can
pass all six ports for either file.

    python tests/interop/envoy_config.py deploy/envoy/grpc.yaml \
        --listener 20000 --admin 20001 --app 20002 --grpc 20003 --api 20004 > /tmp/envoy.yaml
"""

from __future__ import annotations

import argparse
import re
import sys

# name -> the port the shipped configs use
DEFAULT_PORTS = {
    "listener": 10000,
    "admin": 9911,
    "app": 10001,
    "grpc": 9191,
    "http": 9192,
    "api": 8081,
}


def render(path: str, ports: dict) -> str:
    """The text of `path` with `port_value: <default>` replaced for every port in `ports`.

    `ports` maps names of DEFAULT_PORTS (or the default port numbers
    themselves) to new ports; ports not given keep their default. Each given
    port must occur in the file (AssertionError otherwise), except the authz
    port of the other mode (`grpc` in http.yaml, `http` in grpc.yaml); the
    result must hold no two equal ports.
    """
    with open(path, encoding="utf-8") as f:
        text = f.read()
    by_port = {port: name for name, port in DEFAULT_PORTS.items()}
    wanted = {}
    for key, new in ports.items():
        name = by_port.get(int(key), key) if str(key).isdigit() else key
        assert name in DEFAULT_PORTS, f"unknown port {key!r} (known: {DEFAULT_PORTS})"
        wanted[name] = int(new)

    def present(name: str) -> bool:
        return re.search(rf"port_value:\s*{DEFAULT_PORTS[name]}(?!\d)", text) is not None

    modes = [m for m in ("grpc", "http") if present(m)]
    assert len(modes) == 1, f"{path}: expected exactly one authz port (9191 or 9192), found {modes}"
    for other in ("grpc", "http"):
        if other != modes[0]:
            wanted.pop(other, None)
    # Substitute through placeholders so that a new port equal to another
    # default (e.g. app -> 9191) is not replaced twice.
    placeholders = {}
    for name, new in wanted.items():
        old = DEFAULT_PORTS[name]
        token = f"@@{name.upper()}@@"
        text, n = re.subn(rf"(port_value:\s*){old}(?!\d)", lambda m, t=token: m.group(1) + t, text)
        assert n > 0, f"{path}: no `port_value: {old}` ({name}) to replace"
        if name == "http":
            # http_service.server_uri names the port in a URL too.
            text = re.sub(rf"(uri:\s*http://127\.0\.0\.1:){old}(?!\d)", lambda m, t=token: m.group(1) + t, text)
        placeholders[token] = new
    for token, new in placeholders.items():
        text = text.replace(token, str(new))
    used = [int(p) for p in re.findall(r"port_value:\s*(\d+)", text)]
    dups = sorted({p for p in used if used.count(p) > 1})
    assert not dups, f"{path}: ports used twice after rendering: {dups}"
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Render an Envoy config of deploy/envoy with other ports.")
    p.add_argument("file", help="deploy/envoy/grpc.yaml or deploy/envoy/http.yaml")
    for name, port in DEFAULT_PORTS.items():
        p.add_argument(f"--{name}", type=int, metavar="PORT", help=f"replaces {port}")
    args = p.parse_args(argv)
    ports = {name: getattr(args, name) for name in DEFAULT_PORTS if getattr(args, name) is not None}
    try:
        sys.stdout.write(render(args.file, ports))
    except AssertionError as e:
        print(f"envoy_config: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
