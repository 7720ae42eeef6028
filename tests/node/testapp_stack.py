#!/usr/bin/env python3
"""Print an example stack with every Deployment running the test app, ready to apply.

  testapp_stack.py [FILE] [--image IMAGE]

Reads a YAML stream (default: examples/simple-stack.yaml), and replaces the containers of
each Deployment by one container of the test app (image localhost/kanary-testapp:dev, pull
policy Never) that listens on the Deployment's first containerPort and greets each
connection with the Deployment's name, so a client can tell which version served it.
Everything else (Services, ports by name or number, the Kanary) stays as the example has it.
"""

import argparse
import sys
from pathlib import Path

import yaml

TOP = Path(__file__).resolve().parents[2]
DEFAULT_FILE = TOP / "examples" / "simple-stack.yaml"
DEFAULT_IMAGE = "localhost/kanary-testapp:dev"


def stack_with_testapp(text, image=DEFAULT_IMAGE):
    """The documents of text with each Deployment's containers replaced by the test app."""
    docs = [d for d in yaml.safe_load_all(text) if d]
    for d in docs:
        if d.get("kind") != "Deployment":
            continue
        spec = d["spec"]["template"]["spec"]
        old = spec["containers"][0]
        ports = old.get("ports") or [{"containerPort": 8080}]
        port = ports[0]["containerPort"]
        spec["containers"] = [{
            "name": "app",
            "image": image,
            "imagePullPolicy": "Never",
            "env": [{"name": "TESTAPP_NAME", "value": d["metadata"]["name"]},
                    {"name": "TESTAPP_PORT", "value": str(port)}],
            "ports": ports,
            "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 2},
            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                "runAsNonRoot": True, "runAsUser": 65532,
                                "capabilities": {"drop": ["ALL"]}},
        }]
        # A deleted pod goes at once: the tests delete whole versions under load.
        spec["terminationGracePeriodSeconds"] = 5
    return docs


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("file", nargs="?", default=str(DEFAULT_FILE))
    p.add_argument("--image", default=DEFAULT_IMAGE)
    args = p.parse_args()
    try:
        text = Path(args.file).read_text()
    except OSError as e:
        sys.exit(f"testapp_stack.py: {e}")
    yaml.safe_dump_all(stack_with_testapp(text, args.image), sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
