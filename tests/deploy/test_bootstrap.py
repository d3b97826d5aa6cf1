"""The node's bootstrap, its self-healing after a spot replacement, secret rotation and operator access.

Parsed with PyYAML (no Ansible needed) like tests/deploy/test_deploy.py; scripts/checks/deploy.sh
runs them next to ansible-playbook --syntax-check and ansible-lint.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import tarfile
import time
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


# --- item 2: a new node bootstraps itself; the deploy waits for it ------------------------

MARKER = "/var/lib/pixtools/bootstrapped"
NODE_PLAYBOOKS = ("deploy.yml", "rollback.yml", "key.yml", "rotate-k3s-token.yml")


def role_names(play: dict[str, Any]) -> list[str]:
    return [r if isinstance(r, str) else r["role"] for r in play.get("roles", [])]


def test_site_ends_by_marking_the_node_bootstrapped() -> None:
    (play,) = load(ANSIBLE / "site.yml")
    assert role_names(play)[-1] == "bootstrap_done"
    assert load(ROLES / "bootstrap_done" / "defaults" / "main.yml")["bootstrap_done_marker"] == (
        MARKER
    )
    assert load(ROLES / "node_target" / "defaults" / "main.yml")["node_target_marker"] == MARKER
    assert f"marker={MARKER}" in (DEPLOY_SCRIPTS / "node-bootstrap.sh").read_text()


@pytest.mark.parametrize("playbook", NODE_PLAYBOOKS)
def test_every_playbook_that_uses_the_cluster_first_waits_for_a_bootstrapped_node(
    playbook: str,
) -> None:
    (play,) = load(ANSIBLE / playbook)
    assert role_names(play)[0] == "node_target", playbook
    # Before node_target only input assertions run (they need no connection).
    for task in play.get("pre_tasks", []):
        assert "ansible.builtin.assert" in task


# Modules that run on the controller only (action plugins): safe before the other hosts ended.
CONTROLLER_ONLY = ("ansible.builtin.set_fact", "ansible.builtin.assert", "ansible.builtin.debug")


def test_node_target_ends_the_other_instances_before_connecting_to_any() -> None:
    tasks = walk_tasks(load(ROLES / "node_target" / "tasks" / "main.yml"))
    end = next(
        i for i, t in enumerate(tasks) if t.get("ansible.builtin.meta") == "end_host" and t["when"]
    )
    assert tasks[end]["when"] == "inventory_hostname != node_target_host"
    for task in tasks[:end]:
        assert any(module in task for module in CONTROLLER_ONLY), task.get("name")
    after = tasks[end + 1 :]
    assert "ansible.builtin.wait_for_connection" in after[0]
    wait = after[1]["ansible.builtin.wait_for"]
    assert wait["path"] == "{{ node_target_marker }}"
    assert "bundle.sh run" in wait["msg"]
    # The choice is the newest launch time (the aws_ec2 inventory's launch_time host variable).
    choose = tasks[0]["ansible.builtin.set_fact"]["node_target_host"]
    assert "launch_time" in choose and "| sort" in choose and "| last" in choose


def test_the_inventory_includes_a_replacement_that_is_still_starting() -> None:
    states = load(ANSIBLE / "inventory" / "aws_ec2.yml")["filters"]["instance-state-name"]
    assert set(states) == {"pending", "running"}


ALARM_TOPIC = "arn:aws:sns:us-east-1:123456789012:pixtools-dev-alarms"


def document_text() -> str:
    """The SSM document as Terraform renders it for dev (its four template variables)."""
    template = (ROOT / "terraform" / "templates" / "node-bootstrap-document.yaml.tftpl").read_text()
    rendered = (
        template.replace("${environment}", "dev")
        .replace("${region}", "us-east-1")
        .replace("${wait_minutes}", "45")
        .replace("${alarm_topic_arn}", ALARM_TOPIC)
    )
    assert "${" not in rendered.replace("$${", ""), "a template variable Terraform does not pass"
    return rendered.replace("$${", "${")


def document_script(**parameters: str) -> str:
    document = yaml.safe_load(document_text())
    (step,) = document["mainSteps"]
    assert step["action"] == "aws:runShellScript"
    script = "\n".join(step["inputs"]["runCommand"])
    for name, value in parameters.items():
        script = script.replace("{{ " + name + " }}", value)
    return script


def test_the_document_takes_the_parameters_the_association_passes() -> None:
    document = yaml.safe_load(document_text())
    assert document["schemaVersion"] == "2.2"
    assert set(document["parameters"]) == {
        "BundleUri",
        "Environment",
        "WaitMinutes",
        "SecretsVersion",
    }
    assert document["parameters"]["Environment"]["allowedValues"] == ["dev", "prod"]
    pattern = document["parameters"]["BundleUri"]["allowedPattern"]
    assert re.fullmatch(
        pattern,
        "s3://pixtools-dev-manifests-123456789012-us-east-1/bootstrap/pixtools-bootstrap.tar.gz",
    )
    assert not re.fullmatch(pattern, "s3://bucket/x.tar.gz; rm -rf /")
    script = document_script()
    used = set(re.findall(r"\{\{ (\w+) \}\}", script))
    assert used == set(document["parameters"])


NODE_BOOTSTRAP_STUB = 'echo "node-bootstrap ran with $* (alarms to $PIXTOOLS_ALARM_TOPIC_ARN)"\n'


def document_command(
    tmp_path: Path, bundle_present: bool, wait_minutes: str, stub: str = NODE_BOOTSTRAP_STUB
) -> list[str]:
    """The document's script with a stub `aws`, a stub node-bootstrap.sh and a scratch base
    directory (tmp_path/work instead of /var/lib/pixtools/bootstrap), as a command to run."""
    stub_bin = tmp_path / "bin"
    stub_bin.mkdir()
    source = tmp_path / "bundle-src"
    (source / "scripts" / "deploy").mkdir(parents=True)
    (source / "scripts" / "deploy" / "node-bootstrap.sh").write_text(stub)
    bundle = tmp_path / "bundle.tar.gz"
    subprocess.run(["tar", "-C", str(source), "-czf", str(bundle), "scripts"], check=True)
    # aws s3 cp SRC DEST: copy the bundle if it "exists", else fail like a missing key.
    (stub_bin / "aws").write_text(
        "#!/bin/bash\n"
        f'if [[ {"1" if bundle_present else "0"} == 1 ]]; then cp {bundle} "${{@: -1}}"; exit 0; fi\n'
        'echo "fatal error: An error occurred (404)" >&2; exit 1\n'
    )
    (stub_bin / "aws").chmod(0o755)
    script = document_script(
        BundleUri="s3://b/bootstrap/pixtools-bootstrap.tar.gz",
        Environment="dev",
        WaitMinutes=wait_minutes,
        SecretsVersion="1",
    )
    assert "=/var/lib/pixtools/bootstrap\n" in script
    script = script.replace("export PATH=", f"export PATH={stub_bin}:").replace(
        "=/var/lib/pixtools/bootstrap\n", f"={tmp_path / 'work'}\n"
    )
    return ["bash", "-c", script]


def run_document(
    tmp_path: Path, bundle_present: bool, wait_minutes: str
) -> subprocess.CompletedProcess[str]:
    command = document_command(tmp_path, bundle_present, wait_minutes)
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_the_document_runs_node_bootstrap_from_the_downloaded_bundle(tmp_path: Path) -> None:
    result = run_document(tmp_path, bundle_present=True, wait_minutes="45")
    assert result.returncode == 0, result.stderr
    # site.yml's monitoring role needs the alarm topic on the node too (no operator there).
    assert f"node-bootstrap ran with dev (alarms to {ALARM_TOPIC})" in result.stdout
    # Nothing of the run is left behind (the bundle may hold secrets' templates, not values).
    assert list((tmp_path / "work").iterdir()) == []


# The first run writes into its own unpacked bundle (as node-bootstrap.sh writes its inventory
# there), holds until released, then checks its files are still there.
CONCURRENT_STUB = """here=$(cd "$(dirname "$0")/../.." && pwd)
if mkdir "$SYNC/first" 2>/dev/null; then
    echo mine >"$here/written-by-this-run"
    touch "$SYNC/first-started"
    until [ -e "$SYNC/release" ]; do sleep 0.05; done
    [ -f "$here/written-by-this-run" ] || { echo "bundle deleted under a running bootstrap" >&2; exit 3; }
fi
echo "node-bootstrap ran with $*"
"""


def test_a_second_run_never_deletes_the_bundle_a_running_one_executes(tmp_path: Path) -> None:
    """A re-run (bundle.sh run, a changed association) can start while a bootstrap is running:
    SSM runs both at once, and the node-bootstrap.sh lock only orders the playbooks."""
    sync = tmp_path / "sync"
    sync.mkdir()
    command = document_command(tmp_path, True, "45", stub=CONCURRENT_STUB)
    env = {**os.environ, "SYNC": str(sync)}
    first = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        for _ in range(1200):  # the first run reaches node-bootstrap.sh (bounded: 60 s)
            if (sync / "first-started").exists() or first.poll() is not None:
                break
            time.sleep(0.05)
        assert (sync / "first-started").exists(), first.communicate(timeout=10)
        second = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert second.returncode == 0, second.stderr
    finally:
        (sync / "release").touch()
        out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert "node-bootstrap ran with dev" in out
    assert list((tmp_path / "work").iterdir()) == []


def test_the_document_gives_up_naming_the_fix_when_no_bundle_comes(tmp_path: Path) -> None:
    result = run_document(tmp_path, bundle_present=False, wait_minutes="0")
    assert result.returncode == 1
    assert "scripts/deploy/bundle.sh run dev" in result.stderr


def test_node_bootstrap_runs_site_yml_locally_as_this_node(tmp_path: Path) -> None:
    # A copy of the bundle layout: the script writes its inventory into ansible/inventory/.
    for part in ("ansible", "scripts/deploy"):
        shutil.copytree(ROOT / part, tmp_path / part)
    result = subprocess.run(
        ["bash", str(tmp_path / "scripts" / "deploy" / "node-bootstrap.sh"), "prod"],
        env={**os.environ, "PIXTOOLS_INSTANCE_ID": "i-0123abcd", "PIXTOOLS_BOOTSTRAP_DRY_RUN": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    command = result.stdout.split()
    assert command[0].endswith("/bin/ansible-playbook") and command[-1] == "site.yml"
    assert "env=prod" in command and "ansible_connection=local" in command
    inventory_path = Path(command[command.index("-i") + 1])
    # In ansible/inventory/, so group_vars/ (pixtools_env, aws_region, ...) applies.
    assert inventory_path.parent == tmp_path / "ansible" / "inventory"
    parser = configparser.ConfigParser(allow_no_value=True, delimiters=("=",))
    parser.read(inventory_path)
    # site.yml's hosts pattern k3s_server:&prod matches exactly this node.
    assert list(parser["k3s_server"]) == ["i-0123abcd"]
    assert list(parser["prod"]) == ["i-0123abcd"]
    (play,) = load(tmp_path / "ansible" / "site.yml")
    assert play["hosts"] == "k3s_server:&{{ env }}"


@pytest.mark.parametrize("arguments", [[], ["staging"], ["dev", "extra"]])
def test_node_bootstrap_refuses_a_wrong_environment(arguments: list[str]) -> None:
    result = subprocess.run(
        ["bash", str(DEPLOY_SCRIPTS / "node-bootstrap.sh"), *arguments],
        env={**os.environ, "PIXTOOLS_INSTANCE_ID": "i-0123abcd", "PIXTOOLS_BOOTSTRAP_DRY_RUN": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "usage" in result.stderr


def test_the_bundle_is_the_committed_playbooks_manifests_and_node_scripts(tmp_path: Path) -> None:
    out = tmp_path / "bundle.tar.gz"
    result = subprocess.run(
        ["bash", str(DEPLOY_SCRIPTS / "bundle.sh"), "build", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    with tarfile.open(out) as archive:
        names = set(archive.getnames())
        revision = archive.extractfile("REVISION")
        assert revision is not None
        committed = revision.read().decode().strip()
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert committed == head
    for needed in (
        "ansible/site.yml",
        "ansible/ansible.cfg",
        "ansible/inventory/group_vars/all.yml",
        "ansible/roles/k3s_server/tasks/main.yml",
        "manifests/base/kustomization.yaml",
        "scripts/deploy/node-bootstrap.sh",
    ):
        assert needed in names, needed
    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {"ansible", "manifests", "scripts", "REVISION"}
    assert not any(".venv" in name or name.endswith(".tfstate") for name in names)
    assert {n for n in names if n.startswith("scripts/")} <= {
        "scripts",
        "scripts/deploy",
        *(f"scripts/deploy/{p.name}" for p in DEPLOY_SCRIPTS.iterdir()),
    }


def test_bundle_sh_refuses_a_wrong_environment_before_calling_aws() -> None:
    result = subprocess.run(
        ["bash", str(DEPLOY_SCRIPTS / "bundle.sh"), "upload", "staging"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "ENV is dev or prod" in result.stderr


# --- item 9: secret rotation --------------------------------------------------------------


def test_the_k3s_token_rotates_with_k3s_token_rotate_then_ssm_then_a_restart() -> None:
    (play,) = load(ANSIBLE / "rotate-k3s-token.yml")
    tasks = walk_tasks(play["tasks"])
    steps = []
    for task in tasks:
        text = command_text(task) or ""
        if text.startswith("/usr/local/bin/k3s token rotate --new-token"):
            steps.append("rotate")
        elif "put-parameter" in text:
            steps.append("ssm")
            stdin = task["ansible.builtin.command"]["stdin"]
            assert "'Overwrite': true" in stdin and "/k3s_token'" in stdin
            assert "'Type': 'SecureString'" in stdin
            # The value goes through stdin: never an argument another process could read.
            assert "rotate_k3s_token_new" not in text
            assert task["delegate_to"] == "localhost"
        elif task.get("ansible.builtin.include_role", {}).get("name") == "k3s_server":
            steps.append("restart")
    # SSM is written only once the cluster took the new token, and K3s restarts after both.
    assert steps == ["rotate", "ssm", "restart"]
    for task in tasks:
        if "rotate_k3s_token_new" in yaml.safe_dump(task):
            assert task.get("no_log") is True, task.get("name")


def test_nothing_else_writes_the_k3s_token_parameter() -> None:
    writers = [
        where
        for where, task in all_tasks()
        if "put-parameter" in yaml.safe_dump(task) or "ssm_parameter" in yaml.safe_dump(task)
    ]
    assert writers == ["rotate-k3s-token.yml:tasks"]


def test_every_bootstrap_rebuilds_the_datastore_endpoint_from_the_current_password() -> None:
    # After `secret_versions.database` changes, the association re-runs site.yml: the endpoint
    # (which embeds the password) must be rebuilt from SSM on every run and restart K3s.
    tasks = walk_tasks(load(ROLES / "k3s_server" / "tasks" / "main.yml"))
    build = next(t for t in tasks if "--print-endpoint" in (command_text(t) or ""))
    assert "when" not in build and "creates" not in str(build["ansible.builtin.command"])
    render = next(
        t for t in tasks if t.get("ansible.builtin.template", {}).get("src") == "config.yaml.j2"
    )
    assert render["notify"] == "Restart k3s"
    config = (ROLES / "k3s_server" / "templates" / "config.yaml.j2").read_text()
    assert 'datastore-endpoint: "{{ k3s_server_datastore_endpoint.stdout }}"' in config
    # The restart happens before anything uses the cluster again.
    names = [t.get("ansible.builtin.meta") for t in tasks]
    assert names.index("flush_handlers") < next(
        i for i, t in enumerate(tasks) if "kubectl wait" in (command_text(t) or "")
    )
    # RDS applies a new master password asynchronously: the first check waits for it.
    ensure = next(
        t
        for t in walk_tasks(load(ROLES / "k3s_datastore" / "tasks" / "main.yml"))
        if "--ensure-database" in (command_text(t) or "")
    )
    assert ensure["until"] == "k3s_datastore_ensure.rc == 0" and ensure["retries"]
    # And the runtime Secret (PIXTOOLS_DATABASE_URL) is rebuilt, restarting the pods.
    secret = next(
        t
        for t in walk_tasks(load(ROLES / "runtime_secrets" / "tasks" / "main.yml"))
        if "runtime_secrets_helper" in (command_text(t) or "")
    )
    assert secret["notify"] == "Restart the workloads that read the Secret"


# --- item 12: the first API key, over SSM -------------------------------------------------


def test_key_playbook_creates_the_key_with_the_apps_cli_inside_the_api() -> None:
    (play,) = load(ANSIBLE / "key.yml")
    assert play["hosts"] == "k3s_server:&{{ env }}"
    that = play["pre_tasks"][0]["ansible.builtin.assert"]["that"]
    assert "key_name is defined" in that
    tasks = walk_tasks(play["tasks"])
    create = tasks[0]
    argv = create["ansible.builtin.command"]["argv"]
    for part in (
        "'/usr/local/bin/kubectl', '-n', 'pixtools', 'exec', 'deploy/api', '-c', 'api', '--'",
        "'pixtools', 'keys', 'create', key_name",
        "['--admin'] if key_admin | bool",
    ):
        assert part in argv
    # The secret is in the command's output: hidden from the task log, shown once by debug.
    assert create["no_log"] is True
    assert tasks[-1]["ansible.builtin.debug"]["msg"] == "{{ key_created.stdout_lines }}"
    # What the playbook execs into exists: the api Deployment, its container, the CLI verb.
    deployment = load(ROOT / "manifests" / "base" / "api" / "deployment.yaml")
    assert deployment["metadata"]["name"] == "api"
    containers = [c["name"] for c in deployment["spec"]["template"]["spec"]["containers"]]
    assert "api" in containers
    # (tests/deploy runs in the Ansible venv, without pixtools: the CLI is read, not imported)
    cli = (ROOT / "src" / "pixtools" / "cli.py").read_text()
    assert re.search(r'\(\s*ksub,\s*"create"', cli) and '"--admin"' in cli


def key_name_pattern() -> str:
    """The key_name pattern key.yml asserts."""
    (play,) = load(ANSIBLE / "key.yml")
    that = " ".join(play["pre_tasks"][0]["ansible.builtin.assert"]["that"])
    found = re.search(r"match\('([^']+)'\)", that)
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize("name", ["operator", "ci.bot-1", "a"])
def test_key_names_the_playbook_accepts(name: str) -> None:
    # Ansible's `match` test is re.match.
    assert re.match(key_name_pattern(), name)


@pytest.mark.parametrize("name", ["", "-rf", "a b", "x;rm", "k" * 65])
def test_key_names_the_playbook_refuses(name: str) -> None:
    assert not re.match(key_name_pattern(), name)
