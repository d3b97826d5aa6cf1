"""Invariants of the deployment code: ansible/ and .github/workflows.

Parsed with PyYAML only (no Ansible needed), so they run in the main suite and in
scripts/checks/deploy.sh alike. ansible-lint and actionlint check the rest there.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE = ROOT / "ansible"
ROLES = ANSIBLE / "roles"
WORKFLOWS = ROOT / ".github" / "workflows"
PLAYBOOKS = ("site.yml", "deploy.yml", "rollback.yml")
DIGEST_PATTERN = "^sha256:[0-9a-f]{64}$"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def workflow(name: str) -> dict[str, Any]:
    data = load(WORKFLOWS / name)
    # PyYAML reads the key `on` as the boolean True (YAML 1.1).
    if True in data:
        data["on"] = data.pop(True)
    return cast("dict[str, Any]", data)


def tasks_of(role: str) -> list[dict[str, Any]]:
    """Every task of a role (tasks/ and handlers/), blocks flattened."""
    found: list[dict[str, Any]] = []

    def walk(items: list[dict[str, Any]] | None) -> None:
        for item in items or []:
            found.append(item)
            for key in ("block", "rescue", "always"):
                walk(item.get(key))

    for folder in ("tasks", "handlers"):
        for path in sorted((ROLES / role / folder).glob("*.yml")):
            walk(load(path))
    return found


def all_yaml_files() -> list[Path]:
    return sorted(p for p in ANSIBLE.rglob("*") if p.suffix in {".yml", ".yaml", ".cfg", ".j2"})


def used_roles() -> set[str]:
    names: set[str] = set()
    for playbook in PLAYBOOKS:
        for play in load(ANSIBLE / playbook):
            for role in play["roles"]:
                names.add(role if isinstance(role, str) else role["role"])
    return names


# --- playbooks and roles -----------------------------------------------------------------


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_playbooks_only_map_host_groups_to_roles(playbook: str) -> None:
    allowed = {"name", "hosts", "become", "gather_facts", "any_errors_fatal", "roles", "pre_tasks"}
    for play in load(ANSIBLE / playbook):
        assert set(play) <= allowed, f"{playbook}: {set(play) - allowed}"
        assert play["roles"], playbook
        assert "k3s_server" in play["hosts"] and "env" in play["hosts"], play["hosts"]
        # The only tasks a playbook may hold are assertions on its inputs.
        for task in play.get("pre_tasks", []):
            assert "ansible.builtin.assert" in task, task


def test_every_role_has_defaults_and_tasks_and_is_used() -> None:
    roles = sorted(p.name for p in ROLES.iterdir() if p.is_dir())
    assert roles
    for role in roles:
        assert (ROLES / role / "defaults" / "main.yml").is_file(), role
        assert (ROLES / role / "tasks" / "main.yml").is_file(), role
    assert used_roles() == set(roles)


def test_site_bootstraps_in_order() -> None:
    (play,) = load(ANSIBLE / "site.yml")
    roles = play["roles"]
    order = ["k3s_datastore", "k3s_server", "aws_lb_controller", "monitoring", "runtime_secrets"]
    assert [r for r in roles if r in order] == order
    assert "spot_drain" in roles and "node_cleanup" in roles


def test_deploy_requires_digests_and_refreshes_secrets_first() -> None:
    (play,) = load(ANSIBLE / "deploy.yml")
    assert play["roles"] == ["node_target", "runtime_secrets", "app_deploy"]
    (check,) = play["pre_tasks"]
    that = " ".join(check["ansible.builtin.assert"]["that"])
    for var in ("api_digest", "worker_digest"):
        assert f"{var} is match(pixtools_digest_pattern)" in that
    group_vars = load(ANSIBLE / "inventory" / "group_vars" / "all.yml")
    assert group_vars["pixtools_digest_pattern"] == DIGEST_PATTERN
    # The role checks again, whatever chose the digests (deploy or rollback).
    asserts = [t for t in tasks_of("app_deploy") if "ansible.builtin.assert" in t]
    assert any(
        "pixtools_digest_pattern" in " ".join(a["ansible.builtin.assert"]["that"]) for a in asserts
    )


def test_rollback_redeploys_the_last_good_digests_from_the_history() -> None:
    (play,) = load(ANSIBLE / "rollback.yml")
    assert play["roles"] == [
        "node_target",
        {"role": "app_deploy", "vars": {"app_deploy_rollback": True}},
    ]
    (choose,) = [
        t for t in tasks_of("app_deploy") if "ansible.builtin.script" in t and t.get("name")
    ]
    assert ROLLBACK_TARGET.name in choose["ansible.builtin.script"]["cmd"]
    assert load(ROLES / "app_deploy" / "defaults" / "main.yml")["app_deploy_history_configmap"] == (
        "pixtools-deploy-history"
    )


ROLLBACK_TARGET = ROLES / "app_deploy" / "files" / "pixtools-rollback-target.py"
A, B, C = (f"sha256:{c * 64}" for c in "abc")
REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"

# A stand-in for kubectl on the node: answers `get configmap|deployment NAME -o json` from a
# JSON state file, as the real one answers from the cluster.
FAKE_KUBECTL = """#!/usr/bin/env python3
import json, sys
state = json.load(open(sys.argv[0] + ".json"))
args = sys.argv[1:]
kind, name = args[args.index("get") + 1], args[args.index("get") + 2]
if kind == "configmap":
    if state["history"] is None:
        sys.exit("Error from server (NotFound): configmaps not found")
    print(json.dumps({"kind": "ConfigMap", "data": state["history"]}))
elif state["live"] is None:
    sys.exit('Error from server (NotFound): deployments.apps "' + name + '" not found')
else:
    container = {"api": "api", "worker-standard": "worker"}[name]
    image = state["live"][name]
    print(json.dumps({"spec": {"template": {"spec": {"containers": [
        {"name": "sidecar", "image": "x@sha256:" + "f" * 64},
        {"name": container, "image": image}]}}}}))
"""


def rollback_target(
    tmp_path: Path, history: dict[str, str] | None, live_api: str, live_worker: str
) -> subprocess.CompletedProcess[str]:
    """Run the role's rollback helper against a fake cluster state."""
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(FAKE_KUBECTL)
    kubectl.chmod(0o755)
    live = (
        {
            "api": f"{REGISTRY}/pixtools-api@{live_api}",
            "worker-standard": f"{REGISTRY}/pixtools-worker@{live_worker}",
        }
        if live_api
        else None
    )
    (tmp_path / "kubectl.json").write_text(json.dumps({"history": history, "live": live}))
    return subprocess.run(
        [sys.executable, str(ROLLBACK_TARGET), "--kubectl", str(kubectl)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_rollback_after_a_failed_deploy_returns_to_the_last_recorded_release(
    tmp_path: Path,
) -> None:
    """B was recorded good (after A); C was deployed, failed, never recorded, and is live."""
    history = {"current_api": B, "current_worker": B, "previous_api": A, "previous_worker": A}
    done = rollback_target(tmp_path, history, live_api=C, live_worker=C)
    assert done.returncode == 0, done.stderr
    target = json.loads(done.stdout)
    assert (target["api"], target["worker"]) == (B, B)
    # Only one of the two images changed before the failure: still not the recorded release.
    target = json.loads(rollback_target(tmp_path, history, live_api=C, live_worker=B).stdout)
    assert (target["api"], target["worker"]) == (B, B)


def test_rollback_of_a_good_release_returns_to_the_one_before(tmp_path: Path) -> None:
    history = {"current_api": B, "current_worker": C, "previous_api": A, "previous_worker": B}
    done = rollback_target(tmp_path, history, live_api=B, live_worker=C)
    assert done.returncode == 0, done.stderr
    target = json.loads(done.stdout)
    assert (target["api"], target["worker"]) == (A, B)


def test_rollback_with_the_workloads_gone_returns_to_the_last_recorded_release(
    tmp_path: Path,
) -> None:
    history = {"current_api": B, "current_worker": C, "previous_api": A, "previous_worker": A}
    done = rollback_target(tmp_path, history, live_api="", live_worker="")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["api"] == B


def test_rollback_with_nothing_to_return_to_says_so(tmp_path: Path) -> None:
    first = {"current_api": B, "current_worker": B, "previous_api": "", "previous_worker": ""}
    done = rollback_target(tmp_path, first, live_api=B, live_worker=B)
    assert done.returncode == 1 and "nothing to roll back to" in done.stderr
    done = rollback_target(tmp_path, None, live_api=B, live_worker=B)
    assert done.returncode == 1 and "no configmap/pixtools-deploy-history" in done.stderr


digests = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64).map("sha256:{}".format)


@given(
    current=st.tuples(digests, digests),
    previous=st.tuples(digests, digests),
    live=st.tuples(digests, digests),
)
def test_rollback_target_is_never_the_live_release_unless_history_says_so(
    current: tuple[str, str], previous: tuple[str, str], live: tuple[str, str]
) -> None:
    spec = importlib.util.spec_from_file_location("rollback_target", ROLLBACK_TARGET)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    history = {
        "current_api": current[0],
        "current_worker": current[1],
        "previous_api": previous[0],
        "previous_worker": previous[1],
    }
    target = module.choose(history, *live)
    expected = previous if live == current else current
    assert (target["api"], target["worker"]) == expected


def test_app_deploy_sets_digests_with_kustomize_and_waits_for_rollouts() -> None:
    text = (ROLES / "app_deploy" / "tasks" / "main.yml").read_text()
    assert "edit set image" in text
    assert "pixtools-api={{ app_deploy_registry }}/pixtools-api@{{ app_deploy_api_digest }}" in text
    assert "targetGroupARN" in text
    assert "{{ app_deploy_kubectl }} apply -k" in text
    assert "rollout status" in text and "--timeout=" in text
    workloads = load(ROLES / "app_deploy" / "defaults" / "main.yml")["app_deploy_workloads"]
    assert {"deployment/api", "deployment/worker-standard", "deployment/worker-ml"} <= set(
        workloads
    )


# --- connection: SSM only ----------------------------------------------------------------


def test_connection_is_aws_ssm_with_the_transfer_bucket() -> None:
    group_vars = load(ANSIBLE / "inventory" / "group_vars" / "all.yml")
    assert group_vars["ansible_connection"] == "amazon.aws.aws_ssm"
    assert group_vars["ansible_aws_ssm_region"] == "us-east-1"
    assert "PIXTOOLS_SSM_BUCKET" in group_vars["ansible_aws_ssm_bucket_name"]
    for env in ("dev", "prod"):
        assert load(ANSIBLE / "inventory" / "group_vars" / f"{env}.yml")["pixtools_env"] == env
    for playbook in PLAYBOOKS:
        for play in load(ANSIBLE / playbook):
            assert "connection" not in play


def test_no_ssh_anywhere() -> None:
    forbidden = re.compile(
        r"ansible_ssh|ansible_port|\bport:\s*22\b|ssh_connection|private_key", re.I
    )
    for path in all_yaml_files():
        assert not forbidden.search(path.read_text()), path
        if path.suffix in {".yml", ".yaml"} and path.name != "ansible.cfg":
            assert "connection: ssh" not in path.read_text(), path


def test_inventory_selects_the_tagged_k3s_nodes_by_environment() -> None:
    inventory = load(ANSIBLE / "inventory" / "aws_ec2.yml")
    assert inventory["plugin"] == "amazon.aws.aws_ec2"
    assert inventory["regions"] == ["us-east-1"]
    assert inventory["filters"]["tag:Role"] == "k3s-server"
    assert inventory["filters"]["tag:Project"] == "pixtools"
    assert set(inventory["filters"]["tag:Environment"]) == {"dev", "prod"}
    assert inventory["hostnames"] == ["instance-id"]
    assert {"k3s_server", "dev", "prod"} <= set(inventory["groups"])
    # The same tags Terraform puts on the node.
    main_tf = (ROOT / "terraform" / "main.tf").read_text()
    assert 'node_role_tag = "k3s-server"' in main_tf
    assert "Environment = var.environment" in main_tf


def test_group_vars_hold_nothing_secret() -> None:
    secretish = re.compile(r"password|secret|token|_key\b", re.I)
    for path in sorted((ANSIBLE / "inventory" / "group_vars").glob("*.yml")):
        for key in load(path):
            assert not secretish.search(key), f"{path.name}: {key}"


# --- secrets ------------------------------------------------------------------------------


def test_tasks_that_touch_secrets_have_no_log() -> None:
    for role in sorted(p.name for p in ROLES.iterdir() if p.is_dir()):
        for task in tasks_of(role):
            text = yaml.safe_dump(task)
            reads_secret = "--with-decryption" in text or "--print-endpoint" in text
            command = str(task.get("ansible.builtin.command", ""))
            runs_secret_helper = "runtime_secrets_helper" in command
            renders_k3s_config = "config.yaml.j2" in text
            if reads_secret or runs_secret_helper or renders_k3s_config:
                assert task.get("no_log") is True, f"{role}: {task.get('name')}"


def test_runtime_secret_is_built_on_the_node_from_ssm() -> None:
    helper = (ROLES / "runtime_secrets" / "templates" / "pixtools-runtime-secret.py.j2").read_text()
    assert "get-parameters-by-path" in helper and "--with-decryption" in helper
    assert "create" in helper and "--dry-run=client" in helper and '"apply", "-f", "-"' in helper
    defaults = load(ROLES / "runtime_secrets" / "defaults" / "main.yml")
    assert defaults["runtime_secrets_name"] == "pixtools-runtime"
    assert defaults["runtime_secrets_ssm_path"] == "/pixtools/{{ pixtools_env }}"
    # The keys the manifests read (manifests/base/config/runtime-secret.example.yaml).
    example = load(ROOT / "manifests" / "base" / "config" / "runtime-secret.example.yaml")
    assert set(example["stringData"]) <= set(defaults["runtime_secrets_keys"].values())
    assert "k3s_token" not in defaults["runtime_secrets_keys"]


# --- K3s ----------------------------------------------------------------------------------


def test_k3s_config_uses_the_rds_datastore_and_no_traefik() -> None:
    config = (ROLES / "k3s_server" / "templates" / "config.yaml.j2").read_text()
    assert "datastore-endpoint:" in config
    assert "token:" in config
    defaults = load(ROLES / "k3s_server" / "defaults" / "main.yml")
    assert "traefik" in defaults["k3s_server_disable"]
    assert defaults["k3s_server_config_path"] == "/etc/rancher/k3s/config.yaml"
    assert re.fullmatch(r"v\d+\.\d+\.\d+\+k3s\d+", defaults["k3s_server_version"])
    assert defaults["k3s_server_token_parameter"] == "/pixtools/{{ pixtools_env }}/k3s_token"
    assert (
        load(ROLES / "k3s_datastore" / "defaults" / "main.yml")["k3s_datastore_database"]
        == "k3s_state"
    )


def test_spot_drain_deletes_pods_within_the_notice() -> None:
    script = (ROLES / "spot_drain" / "templates" / "pixtools-spot-drain.sh.j2").read_text()
    assert "spot/instance-action" in script
    assert "X-aws-ec2-metadata-token" in script  # IMDSv2
    for flag in ("--disable-eviction", "--ignore-daemonsets", "--delete-emptydir-data"):
        assert flag in script


def test_node_cleanup_removes_gone_nodes_and_pinned_claims() -> None:
    script = (ROLES / "node_cleanup" / "templates" / "pixtools-node-cleanup.py.j2").read_text()
    assert '"delete", "node"' in script and '"delete", "pvc"' in script
    assert "kubernetes.io/hostname" in script


# --- workflows ----------------------------------------------------------------------------


def test_ci_runs_the_three_jobs_on_pull_requests() -> None:
    ci = workflow("ci.yaml")
    assert "pull_request" in ci["on"] and "push" in ci["on"]
    assert {"quality_and_tests", "devsecops", "image_build"} <= set(ci["jobs"])
    services = ci["jobs"]["quality_and_tests"]["services"]
    assert {s["image"] for s in services.values()} == {"postgres:16", "rabbitmq:3", "redis:7"}
    steps = " ".join(str(s.get("run", "")) for s in ci["jobs"]["devsecops"]["steps"])
    for script in ("terraform.sh", "manifests.sh", "deploy.sh"):
        assert f"scripts/checks/{script}" in steps
    for build in (
        s for s in ci["jobs"]["image_build"]["steps"] if "build-push-action" in s.get("uses", "")
    ):
        assert build["with"]["push"] is False


def test_ci_runs_the_imaging_tests_on_plain_pillow_too() -> None:
    """#14: the engine must be right on pillow-simd (the main run) and on plain Pillow as
    `pip install -e .` resolves it; both CI entry points run the imaging tests there."""
    ci = workflow("ci.yaml")
    steps = " ".join(str(s.get("run", "")) for s in ci["jobs"]["quality_and_tests"]["steps"])
    local = (ROOT / ".ci" / "run").read_text()
    for text in (steps, local):
        assert (
            "-m venv .venv-pillow" in text and ".venv-pillow/bin/pip install -q -e '.[dev]'" in text
        )
        assert "install-pillow-simd" not in text.split(".venv-pillow", 1)[1]
        for tests in ("tests/unit/imaging", "tests/property/test_imaging_*.py", "tests/corpus"):
            assert tests in text.split(".venv-pillow/bin/pytest", 1)[1], tests


def test_cd_dev_deploys_main_with_oidc_and_no_environment() -> None:
    cd = workflow("cd-dev.yaml")
    assert cd["on"]["push"]["branches"] == ["main"]
    assert cd["concurrency"]["group"] == "deploy-dev"
    for job in cd["jobs"].values():
        assert "environment" not in job  # the dev role trusts ref:refs/heads/main only
        assert job["permissions"]["id-token"] == "write"
    steps = cd["jobs"]["build_and_deploy"]["steps"]
    text = yaml.safe_dump(steps)
    assert "ansible-playbook deploy.yml -e env=dev" in text
    assert "steps.api.outputs.digest" in text and "steps.worker.outputs.digest" in text
    assert "vars.DEV_DEPLOY_ROLE_ARN" in text


def test_cd_prod_is_manual_behind_the_prod_environment() -> None:
    cd = workflow("cd-prod.yaml")
    assert set(cd["on"]) == {"workflow_dispatch"}
    inputs = cd["on"]["workflow_dispatch"]["inputs"]
    assert {"api_digest", "worker_digest", "action"} <= set(inputs)
    assert cd["concurrency"]["group"] == "deploy-prod"
    for job in cd["jobs"].values():
        assert job["environment"] == "prod"
        assert job["permissions"]["id-token"] == "write"
    text = yaml.safe_dump(cd["jobs"])
    assert "rollback.yml -e env=prod" in text and "deploy.yml -e env=prod" in text
    assert "docker/build-push-action" not in text  # promote, never rebuild
    assert "vars.PROD_DEPLOY_ROLE_ARN" in text


@pytest.mark.parametrize("name", ["ci.yaml", "cd-dev.yaml", "cd-prod.yaml"])
def test_every_job_has_minimal_permissions(name: str) -> None:
    wf = workflow(name)
    assert wf["permissions"] in ({}, {"contents": "read"}), name
    for job_name, job in wf["jobs"].items():
        perms = job.get("permissions")
        assert isinstance(perms, dict), f"{name}:{job_name} declares no permissions"
        assert set(perms.items()) <= {("contents", "read"), ("id-token", "write")}, perms


@pytest.mark.parametrize("name", ["ci.yaml", "cd-dev.yaml", "cd-prod.yaml"])
def test_no_static_aws_keys_and_actions_pinned_by_sha(name: str) -> None:
    text = (WORKFLOWS / name).read_text()
    assert not re.search(r"AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|aws-access-key-id", text)
    assert "secrets." not in text
    for ref in re.findall(r"uses:\s*(\S+)", text):
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), ref


# --- task deploy ENV=dev: scripts/deploy/deploy.py ---------------------------------------

DEPLOY_SCRIPT = ROOT / "scripts" / "deploy" / "deploy.py"

# Stand-ins for the operator's tools, answering from a JSON state file next to them, the way the
# real ones answer from AWS and the local installation.
FAKE_TOOL = """#!{python}
import json, pathlib, sys
here = pathlib.Path(sys.argv[0]).resolve().parent
state = json.loads((here / "state.json").read_text())
tool, args = pathlib.Path(sys.argv[0]).name, sys.argv[1:]
import os
with (here / "calls.jsonl").open("a") as calls:
    calls.write(json.dumps({{"tool": tool, "args": args,
                            "bucket": os.environ.get("PIXTOOLS_SSM_BUCKET"),
                            "alarms": os.environ.get("PIXTOOLS_ALARM_TOPIC_ARN")}}) + "\\n")
if tool == "aws" and args[:2] == ["sts", "get-caller-identity"]:
    if not state["credentials"]:
        sys.exit("Unable to locate credentials. You can configure credentials by running aws configure.")
    print(json.dumps({{"Account": "123456789012"}}))
elif tool == "aws" and args[:2] == ["ecr", "describe-images"]:
    repo = args[args.index("--repository-name") + 1]
    print(json.dumps({{"imageDetails": state["images"].get(repo, [])}}))
elif tool == "aws" and args[:2] == ["ec2", "describe-instances"]:
    print(json.dumps({{"Reservations": [{{"Instances": [
        {{"InstanceId": i["id"], "LaunchTime": i["launched"]}} for i in state["instances"]]}}]}}))
elif tool == "aws" and args[:2] == ["ssm", "describe-instance-information"]:
    wanted = args[args.index("--filters") + 1].split("Values=")[1].split(",")
    print(json.dumps({{"InstanceInformationList": [
        {{"InstanceId": i["id"], "PingStatus": "Online" if i["online"] else "ConnectionLost"}}
        for i in state["instances"] if i["id"] in wanted]}}))
elif tool == "terraform" and "output" in args:
    print(json.dumps({{k: {{"value": v}} for k, v in state["tf_outputs"].items()}}))
elif tool == "ansible" and "-m" in args:
    sys.exit(0 if state["bootstrapped"] else 2)
elif tool == "bash":
    # scripts/deploy/bundle.sh: record where it was told the bundle and the association are.
    with (here / "calls.jsonl").open("a") as calls:
        calls.write(json.dumps({{"tool": "bundle-env",
                                "uri": os.environ.get("PIXTOOLS_BUNDLE_URI"),
                                "association": os.environ.get("PIXTOOLS_ASSOCIATION_ID")}}) + "\\n")
elif tool == "ansible-galaxy":
    print("# /root/.ansible/collections")
    if state["amazon_aws"]:
        print("amazon.aws 10.1.1")
elif tool == "ansible":
    print("ansible [core 2.19.4]")
    print(f"  python version = 3.11.7 (main) [GCC] ({{here / 'ansible-python'}})")
elif tool == "ansible-python":
    sys.exit(0 if state["boto3"] else "ModuleNotFoundError: No module named 'boto3'")
"""
NODE = "i-0abc"
TOOLS = (
    "bash",
    "aws",
    "session-manager-plugin",
    "terraform",
    "ansible",
    "ansible-playbook",
    "ansible-galaxy",
    "ansible-python",
)


def fake_tools(tmp_path: Path, present: tuple[str, ...] = TOOLS, **state: Any) -> Path:
    """A directory with the given fake tools and their state; use it as the whole PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    defaults = {
        "credentials": True,
        "amazon_aws": True,
        "boto3": True,
        "images": {},
        "tf_outputs": {},
        "bootstrapped": True,
        "instances": [{"id": NODE, "launched": "2026-12-01T08:00:00+00:00", "online": True}],
    }
    (bin_dir / "state.json").write_text(json.dumps({**defaults, **state}))
    for tool in present:
        path = bin_dir / tool
        path.write_text(FAKE_TOOL.format(python=sys.executable))
        path.chmod(0o755)
    return bin_dir


def deploy_script(
    bin_dir: Path, *args: str, terraform_dir: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {"PATH": str(bin_dir), "HOME": str(bin_dir)}
    if terraform_dir is not None:
        env["PIXTOOLS_TERRAFORM_DIR"] = str(terraform_dir)
    return subprocess.run(
        [sys.executable, str(DEPLOY_SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_deploy_names_every_missing_prerequisite_and_its_fix(tmp_path: Path) -> None:
    done = deploy_script(fake_tools(tmp_path, present=()), "check")
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    for needle, fix in (
        ("aws CLI v2 not found", "install it"),
        ("session-manager-plugin not found", "session-manager-working-with-install-plugin"),
        ("terraform not found", "Terraform 1.11"),
        ("ansible not found", "pip install 'ansible==12.3.0' boto3"),
    ):
        (line,) = [ln for ln in lines if needle in ln]
        assert fix in line, line


def test_deploy_names_credentials_collection_and_boto3(tmp_path: Path) -> None:
    tools = fake_tools(tmp_path, credentials=False, amazon_aws=False, boto3=False)
    done = deploy_script(tools, "check")
    assert done.returncode == 1
    assert "no usable AWS credentials: run `aws sso login`" in done.stderr
    assert "ansible-galaxy collection install -r ansible/requirements.yml" in done.stderr
    assert f"{tools / 'ansible-python'} -m pip install boto3" in done.stderr
    assert "not found" not in done.stderr


def test_deploy_check_passes_with_everything_present(tmp_path: Path) -> None:
    done = deploy_script(fake_tools(tmp_path), "check")
    assert done.returncode == 0, done.stderr
    assert "all prerequisites present" in done.stdout


def ecr_image(tag: str, digest: str, pushed: str) -> dict[str, Any]:
    return {"imageDigest": digest, "imageTags": [tag], "imagePushedAt": pushed}


def test_deploy_takes_the_newest_api_and_worker_pair_ci_pushed(tmp_path: Path) -> None:
    """Same tag in both repositories (cd-dev tags both `<sha>-<attempt>`); newest such pair."""
    images = {
        "pixtools-api": [
            ecr_image("c1-1", A, "2026-12-01T10:00:00+00:00"),
            ecr_image("c2-1", B, "2026-12-02T10:00:00+00:00"),
        ],
        "pixtools-worker": [
            ecr_image("c1-1", C, "2026-12-01T10:01:00+00:00"),
            ecr_image("c2-1", A, "2026-12-02T10:02:00+00:00"),
            # A worker without its api (a half-finished build) is never picked.
            ecr_image("c3-1", C, "2026-12-03T10:00:00+00:00"),
        ],
    }
    done = deploy_script(fake_tools(tmp_path, images=images), "digests", "--env", "dev")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"api": B, "worker": A}
    assert "tag c2-1" in done.stdout


def test_deploy_says_how_to_get_images_when_ecr_has_none(tmp_path: Path) -> None:
    images = {"pixtools-api": [ecr_image("c1-1", A, "2026-12-01T10:00:00+00:00")]}
    done = deploy_script(fake_tools(tmp_path, images=images), "digests", "--env", "dev")
    assert done.returncode == 1
    assert "push to main" in done.stderr and "BUILD=1" in done.stderr


def test_deploy_rejects_a_digest_that_is_not_one(tmp_path: Path) -> None:
    done = deploy_script(
        fake_tools(tmp_path),
        "digests",
        "--env",
        "dev",
        "--api-digest",
        "latest",
        "--worker-digest",
        A,
    )
    assert done.returncode == 1
    assert "api digest 'latest' is not sha256:<64 lowercase hex>" in done.stderr


def test_taskfile_runs_the_deploy_script_as_typed() -> None:
    tasks = load(ROOT / "Taskfile.yml")["tasks"]
    for name in ("deploy", "bootstrap", "rollback", "key"):
        text = yaml.safe_dump(tasks[name])
        assert f"scripts/deploy/deploy.py {name} --env {{{{.ENV}}}}" in text, name
        assert tasks[name]["requires"]["vars"][0] == "ENV", name
    # `task key` needs the transfer bucket like every playbook: deploy.py reads it from Terraform.
    assert tasks["key"]["requires"]["vars"] == ["ENV", "NAME"]
    assert "--name {{.NAME}}" in yaml.safe_dump(tasks["key"])
    apply = yaml.safe_dump(tasks["infra:apply"])
    assert "terraform apply" in apply and "env/{{.ENV}}.tfvars" in apply


TF_OUTPUTS = {
    "manifests_bucket_name": "pixtools-manifests-dev-123456789012-us-east-1",
    "alb_dns_name": "pixtools-dev-1.us-east-1.elb.amazonaws.com",
    "api_target_group_arn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/x/1",
    "alarm_topic_arn": "arn:aws:sns:us-east-1:123456789012:pixtools-dev-alarms",
    "bootstrap_bundle_uri": "s3://pixtools-dev-manifests-123456789012-us-east-1/bootstrap/b.tar.gz",
    "node_bootstrap_association_id": "0a1b2c3d-0000-4000-8000-000000000000",
}
PAIR = {
    "pixtools-api": [ecr_image("c9-1", A, "2026-12-05T10:00:00+00:00")],
    "pixtools-worker": [ecr_image("c9-1", B, "2026-12-05T10:01:00+00:00")],
}


def calls_of(bin_dir: Path, tool: str) -> list[dict[str, Any]]:
    lines = (bin_dir / "calls.jsonl").read_text().splitlines()
    return [c for c in map(json.loads, lines) if c["tool"] == tool]


@pytest.mark.parametrize("bootstrapped", [True, False])
def test_deploy_bootstraps_when_needed_then_deploys_through_the_terraform_bucket(
    tmp_path: Path, bootstrapped: bool
) -> None:
    terraform_dir = tmp_path / "terraform"
    terraform_dir.mkdir()
    (terraform_dir / "backend.hcl").write_text('bucket = "pixtools-tfstate-123456789012"\n')
    tools = fake_tools(tmp_path, images=PAIR, tf_outputs=TF_OUTPUTS, bootstrapped=bootstrapped)
    done = deploy_script(
        tools, "deploy", "--env", "dev", "--skip-smoke", terraform_dir=terraform_dir
    )
    assert done.returncode == 0, done.stderr
    (init,) = [c for c in calls_of(tools, "terraform") if "init" in c["args"]]
    assert "-backend-config=env/dev.s3.tfbackend" in init["args"]
    playbooks = calls_of(tools, "ansible-playbook")
    # Never site.yml from here: the node may be bootstrapping itself at this very moment, and
    # only runs on the node are serialised (node-bootstrap.sh's lock).
    assert [c["args"] for c in playbooks] == [
        [
            "deploy.yml",
            "-e",
            "env=dev",
            "-e",
            f"node_target_instance={NODE}",
            "-e",
            f"api_digest={A}",
            "-e",
            f"worker_digest={B}",
        ]
    ]
    # Bootstrapped or not is the marker site.yml's last role writes on the node, not CRDs
    # (those live in RDS and outlast the node).
    (probe,) = [c for c in calls_of(tools, "ansible") if "-m" in c["args"]]
    assert probe["args"][-1] == "test -f /var/lib/pixtools/bootstrapped"
    # Every deploy refreshes the bundle a replacement node bootstraps itself from; a node that
    # has not bootstrapped runs its own bootstrap once more (bundle.sh run uploads first).
    (bundle,) = calls_of(tools, "bash")
    assert bundle["args"][1:] == (["upload", "dev"] if bootstrapped else ["run", "dev"])
    assert bundle["args"][0].endswith("scripts/deploy/bundle.sh")
    (where,) = calls_of(tools, "bundle-env")
    assert where["uri"] == TF_OUTPUTS["bootstrap_bundle_uri"]
    assert where["association"] == TF_OUTPUTS["node_bootstrap_association_id"]
    # The SSM transfer bucket comes from dev's Terraform outputs, not from the operator.
    assert {c["bucket"] for c in playbooks} == {TF_OUTPUTS["manifests_bucket_name"]}
    # So does the alarm topic site.yml's monitoring role routes Alertmanager to.
    assert {c["alarms"] for c in playbooks} == {TF_OUTPUTS["alarm_topic_arn"]}


def test_deploy_stops_before_anything_when_the_environment_has_no_infrastructure(
    tmp_path: Path,
) -> None:
    terraform_dir = tmp_path / "terraform"
    terraform_dir.mkdir()
    (terraform_dir / "backend.hcl").write_text("")
    tools = fake_tools(tmp_path, images=PAIR)
    done = deploy_script(tools, "deploy", "--env", "dev", terraform_dir=terraform_dir)
    assert done.returncode == 1
    assert "run `task infra:apply ENV=dev` first" in done.stderr
    assert not (tools / "calls.jsonl").read_text().count("ansible-playbook")
    done = deploy_script(tools, "deploy", "--env", "dev", terraform_dir=tmp_path)
    assert "terraform/backend.hcl is missing" in done.stderr


def test_task_bootstrap_runs_the_nodes_own_bootstrap_not_site_yml_from_here(tmp_path: Path) -> None:
    terraform_dir = tmp_path / "terraform"
    terraform_dir.mkdir()
    (terraform_dir / "backend.hcl").write_text('bucket = "pixtools-tfstate-123456789012"\n')
    tools = fake_tools(tmp_path, tf_outputs=TF_OUTPUTS)
    done = deploy_script(tools, "bootstrap", "--env", "dev", terraform_dir=terraform_dir)
    assert done.returncode == 0, done.stderr
    assert calls_of(tools, "ansible-playbook") == []
    (bundle,) = calls_of(tools, "bash")
    assert bundle["args"][1:] == ["run", "dev"]


@pytest.mark.parametrize(("extra", "admin"), [((), "true"), (("--no-admin",), "false")])
def test_task_key_runs_key_yml_with_the_terraform_bucket(
    tmp_path: Path, extra: tuple[str, ...], admin: str
) -> None:
    terraform_dir = tmp_path / "terraform"
    terraform_dir.mkdir()
    (terraform_dir / "backend.hcl").write_text('bucket = "pixtools-tfstate-123456789012"\n')
    tools = fake_tools(tmp_path, tf_outputs=TF_OUTPUTS)
    done = deploy_script(
        tools, "key", "--env", "dev", "--name", "operator", *extra, terraform_dir=terraform_dir
    )
    assert done.returncode == 0, done.stderr
    (playbook,) = calls_of(tools, "ansible-playbook")
    assert playbook["args"] == [
        "key.yml",
        "-e",
        "env=dev",
        "-e",
        f"node_target_instance={NODE}",
        "-e",
        "key_name=operator",
        "-e",
        f"key_admin={admin}",
    ]
    assert playbook["bucket"] == TF_OUTPUTS["manifests_bucket_name"]


def test_task_key_refuses_a_missing_or_odd_name(tmp_path: Path) -> None:
    tools = fake_tools(tmp_path)
    for name in ("", "a b", "-x"):
        done = deploy_script(tools, "key", "--env", "dev", f"--name={name}")
        assert done.returncode == 1
        assert "NAME= is required" in done.stderr


def test_during_a_rebalance_the_deploy_acts_on_the_newest_node_only(tmp_path: Path) -> None:
    """Two tagged instances (capacity rebalance): the old one may be unreachable already.

    The probes, the playbook and the smoke key all go to the replacement; before its SSM agent
    answers the deploy waits for it instead of acting on the old one.
    """
    terraform_dir = tmp_path / "terraform"
    terraform_dir.mkdir()
    (terraform_dir / "backend.hcl").write_text('bucket = "pixtools-tfstate-123456789012"\n')
    old = {"id": "i-0old", "launched": "2026-12-01T08:00:00+00:00", "online": False}
    new = {"id": "i-0new", "launched": "2026-12-03T09:30:00+00:00", "online": True}
    tools = fake_tools(tmp_path, images=PAIR, tf_outputs=TF_OUTPUTS, instances=[new, old])
    done = deploy_script(
        tools, "deploy", "--env", "dev", "--skip-smoke", terraform_dir=terraform_dir
    )
    assert done.returncode == 0, done.stderr
    assert "node online in SSM: i-0new" in done.stdout
    (probe,) = [c for c in calls_of(tools, "ansible") if "-m" in c["args"]]
    assert probe["args"][0] == "k3s_server:&dev:&i-0new"
    (playbook,) = calls_of(tools, "ansible-playbook")
    assert "node_target_instance=i-0new" in playbook["args"]

    # The replacement is still starting (its agent not yet online): wait, never fall back.
    tools = fake_tools(
        tmp_path,
        images=PAIR,
        tf_outputs=TF_OUTPUTS,
        instances=[{**old, "online": True}, {**new, "online": False}],
    )
    (tools / "calls.jsonl").unlink()
    done = deploy_script(
        tools, "deploy", "--env", "dev", "--node-timeout", "0", terraform_dir=terraform_dir
    )
    assert done.returncode == 1
    assert "dev node i-0new is not online in SSM" in done.stderr
    assert calls_of(tools, "ansible-playbook") == []
    assert [c for c in calls_of(tools, "ansible") if "-m" in c["args"]] == []


def test_a_deploy_with_no_node_says_so(tmp_path: Path) -> None:
    terraform_dir = tmp_path / "terraform"
    terraform_dir.mkdir()
    (terraform_dir / "backend.hcl").write_text('bucket = "pixtools-tfstate-123456789012"\n')
    tools = fake_tools(tmp_path, images=PAIR, tf_outputs=TF_OUTPUTS, instances=[])
    done = deploy_script(
        tools, "rollback", "--env", "dev", "--node-timeout", "0", terraform_dir=terraform_dir
    )
    assert done.returncode == 1
    assert "no dev K3s node runs" in done.stderr
