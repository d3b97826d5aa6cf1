#!/usr/bin/env python3
"""Print the image digests a rollback must return to, as JSON {"api": ..., "worker": ...}.

The deploy records a release in the ConfigMap pixtools-deploy-history only after its rollouts
succeeded: current_* is the last release known good, previous_* the one before it. A deploy
that failed is never recorded, but its digests are live. So:

  live == current  ->  roll back to previous  (undo the last good release)
  live != current  ->  roll back to current   (undo a failed deploy: back to the last good one)

Run on the node by roles/app_deploy (ansible.builtin.script), with kubectl and the kubeconfig
of K3s. Exit status 1 with one line on stderr when there is nothing to roll back to.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from typing import Any

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def kubectl_json(kubectl: str, *args: str) -> dict[str, Any]:
    """Run kubectl with -o json and parse its output."""
    out = subprocess.run([kubectl, *args, "-o", "json"], check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout))


def live_digest(kubectl: str, namespace: str, deployment: str, container: str) -> str:
    """The digest the deployment's container runs now ("" when there is none to read)."""
    try:
        obj = kubectl_json(kubectl, "-n", namespace, "get", "deployment", deployment)
    except subprocess.CalledProcessError:
        return ""  # gone (deleted by hand, or never applied): not the recorded release
    spec = obj["spec"]["template"]["spec"]
    for c in spec["containers"]:
        if c["name"] == container:
            image = str(c["image"])
            return image.rsplit("@", 1)[1] if "@" in image else ""
    return ""


def choose(history: dict[str, str], live_api: str, live_worker: str) -> dict[str, str]:
    """The release to return to, and why (see the module docstring)."""
    current = (history.get("current_api", ""), history.get("current_worker", ""))
    previous = (history.get("previous_api", ""), history.get("previous_worker", ""))
    if (live_api, live_worker) == current:
        target, reason = previous, "live digests are the last good release: back to the one before"
    else:
        target, reason = current, "live digests were never recorded good: back to the last good one"
    if not all(DIGEST.match(d) for d in target):
        raise SystemExit(f"nothing to roll back to: {reason}, and the history holds none")
    return {"api": target[0], "worker": target[1], "reason": reason}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubectl", default="/usr/local/bin/kubectl")
    parser.add_argument("--namespace", default="pixtools")
    parser.add_argument("--history", default="pixtools-deploy-history")
    args = parser.parse_args()
    try:
        cm = kubectl_json(args.kubectl, "-n", args.namespace, "get", "configmap", args.history)
    except subprocess.CalledProcessError:
        sys.exit(f"nothing to roll back to: no configmap/{args.history} in {args.namespace}")
    history = {str(k): str(v) for k, v in (cm.get("data") or {}).items()}
    live_api = live_digest(args.kubectl, args.namespace, "api", "api")
    live_worker = live_digest(args.kubectl, args.namespace, "worker-standard", "worker")
    print(json.dumps(choose(history, live_api, live_worker)))


if __name__ == "__main__":
    main()
