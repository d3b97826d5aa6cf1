"""The overlays rendered with ``kubectl kustomize``, and walking their objects."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
ENVS = ("dev", "prod")
K8S_SCHEMA_VERSION = os.environ.get("PIXTOOLS_K8S_VERSION", "1.31.0")
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "CronJob", "Job")

Object = dict[str, Any]
Objects = tuple[Object, ...]


def _kubectl() -> str:
    found = shutil.which("kubectl") or (
        "/usr/bin/kubectl" if Path("/usr/bin/kubectl").exists() else None
    )
    if found is None:
        pytest.fail("kubectl is not installed: the manifests are rendered with `kubectl kustomize`")
    return found


@cache
def render(env: str) -> Objects:
    out = subprocess.run(
        [_kubectl(), "kustomize", str(MANIFESTS / "overlays" / env)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


def of_kind(objs: Objects, kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind]


def named(objs: Objects, kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in of_kind(objs, kind) if o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def pod_template(obj: dict[str, Any]) -> dict[str, Any]:
    if obj["kind"] == "CronJob":
        return dict(obj["spec"]["jobTemplate"]["spec"]["template"])
    return dict(obj["spec"]["template"])


def workloads(objs: Objects) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] in WORKLOAD_KINDS]


def containers(pod_spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from pod_spec.get("initContainers", [])
    yield from pod_spec["containers"]


def all_containers(objs: Objects) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for w in workloads(objs):
        spec = pod_template(w)["spec"]
        for c in containers(spec):
            yield f"{w['kind']}/{w['metadata']['name']}/{c['name']}", spec, c


def quantity_milli_cpu(value: str | int | float) -> int:
    text = str(value)
    return int(text[:-1]) if text.endswith("m") else int(float(text) * 1000)


def quantity_mi(value: str | int) -> float:
    text = str(value)
    units = {
        "Ki": 1 / 1024,
        "Mi": 1,
        "Gi": 1024,
        "Ti": 1024 * 1024,
        "M": 1e6 / 2**20,
        "G": 1e9 / 2**20,
    }
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text) / 2**20
