"""The node's bootstrap, its self-healing after a spot replacement, secret rotation and operator access.

Parsed with PyYAML (no Ansible needed) like tests/deploy/test_deploy.py; scripts/checks/deploy.sh
runs them next to ansible-playbook --syntax-check and ansible-lint.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE = ROOT / "ansible"
ROLES = ANSIBLE / "roles"
DEPLOY_SCRIPTS = ROOT / "scripts" / "deploy"

# The tools K3s installs into /usr/local/bin (kubectl, crictl and ctr are links to k3s), and the
# ones the roles download there. Amazon Linux 2023's sudo secure_path is
# /sbin:/bin:/usr/sbin:/usr/bin, and every Ansible task runs under sudo over SSM: a bare name is
# "command not found" there.
LOCAL_BIN_TOOLS = ("kubectl", "k3s", "helm", "crictl", "ctr", "kustomize")
_TOOL = "|".join(LOCAL_BIN_TOOLS)
# A shell command position: start of the text or a line, after a pipe, ;, &&, ||, $( or (, or
# after a command that runs its arguments (xargs [-flags], exec, sudo, env, timeout N, nohup).
_SHELL_BARE = re.compile(
    r"(?:^|[|;&(`]|\$\(|\n)\s*(?:(?:xargs(?:\s+-\w+)*|exec|sudo|env|nohup|timeout\s+\S+)\s+)*"
    rf"(?P<tool>{_TOOL})(?=\s|$|;|\))",
    re.MULTILINE,
)
# argv[0] of a Python subprocess call or list: ["kubectl", ...] or run("kubectl", ...).
_ARGV_BARE = re.compile(rf"""[\[(]\s*(?P<q>["'])(?P<tool>{_TOOL})(?P=q)""")


def bare_invocations(text: str, *, python: bool = False) -> list[str]:
    """The cluster tools that `text` runs by bare name: shell syntax, or Python argv lists."""
    if python:
        return [m.group("tool") for m in _ARGV_BARE.finditer(text)]
    return [m.group("tool") for m in _SHELL_BARE.finditer(_without_comments(text))]


def _without_comments(text: str) -> str:
    return "\n".join("" if line.lstrip().startswith("#") else line for line in text.splitlines())


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def walk_tasks(items: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for item in items or []:
        found.append(item)
        for key in ("block", "rescue", "always"):
            found += walk_tasks(item.get(key))
    return found


def all_tasks() -> list[tuple[str, dict[str, Any]]]:
    """Every task of every role and playbook, with where it lives."""
    found: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(ROLES.glob("*/tasks/*.yml")) + sorted(ROLES.glob("*/handlers/*.yml")):
        found += [(str(path.relative_to(ROOT)), task) for task in walk_tasks(load(path))]
    for path in sorted(ANSIBLE.glob("*.yml")):
        if path.name == "requirements.yml":
            continue
        for play in load(path):
            for key in ("pre_tasks", "tasks", "post_tasks", "handlers"):
                found += [(f"{path.name}:{key}", task) for task in walk_tasks(play.get(key))]
    return found


COMMAND_MODULES = ("ansible.builtin.command", "ansible.builtin.shell", "command", "shell")


def command_text(task: dict[str, Any]) -> str | None:
    for module in COMMAND_MODULES:
        if module in task:
            args = task[module]
            if isinstance(args, dict):
                if "argv" in args:
                    return " ".join(str(a) for a in args["argv"])
                return str(args.get("cmd", ""))
            return str(args)
    return None


# --- item 10: sudo's secure_path ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "python", "expected"),
    [
        ("kubectl get nodes", False, ["kubectl"]),
        ("set -o pipefail\nkubectl get x | kubectl apply -f -", False, ["kubectl", "kubectl"]),
        ("/usr/local/bin/kubectl get x | xargs -r kubectl rollout restart", False, ["kubectl"]),
        ("out=$(k3s --version)", False, ["k3s"]),
        ("timeout 30 helm list", False, ["helm"]),
        ("/usr/local/bin/kubectl apply -f - && /usr/local/bin/k3s token rotate", False, []),
        ("# kubectl in a comment\nAfter=k3s.service", False, []),
        ("apiVersion: helm.cattle.io/v1", False, []),
        ('run("kubectl", "get", "nodes")', True, ["kubectl"]),
        ('subprocess.run(["k3s", "token"])', True, ["k3s"]),
        ('KUBECTL = "/usr/local/bin/kubectl"\nrun(KUBECTL, "get")', True, []),
    ],
)
def test_the_scanner_finds_bare_invocations(text: str, python: bool, expected: list[str]) -> None:
    assert bare_invocations(text, python=python) == expected


def test_no_task_runs_a_cluster_tool_by_bare_name() -> None:
    offenders = []
    commands = 0
    for where, task in all_tasks():
        text = command_text(task)
        if text is None:
            continue
        commands += 1
        if bare_invocations(text):
            offenders.append(f"{where}: {task.get('name')}: {text.strip()[:80]}")
    assert commands > 20, "the walk found the command tasks"
    assert not offenders, "use /usr/local/bin/<tool> (sudo's secure_path lacks it):\n" + "\n".join(
        offenders
    )


def node_scripts() -> list[Path]:
    """Scripts that run on the node: role templates, and the node side of scripts/deploy."""
    templates = [p for p in ROLES.glob("*/templates/*.j2") if not p.name.endswith(".yaml.j2")]
    return sorted(templates) + sorted(DEPLOY_SCRIPTS.glob("*.sh"))


def test_no_node_script_runs_a_cluster_tool_by_bare_name() -> None:
    scripts = node_scripts()
    assert any(p.name.endswith(".py.j2") for p in scripts) and any(
        p.name.endswith(".sh.j2") for p in scripts
    )
    offenders = {
        str(path.relative_to(ROOT)): found
        for path in scripts
        if (found := bare_invocations(path.read_text(), python=".py" in path.name))
    }
    assert not offenders, f"use /usr/local/bin/<tool> (sudo's secure_path lacks it): {offenders}"
