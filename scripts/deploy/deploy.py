#!/usr/bin/env python3
"""`task deploy|bootstrap|rollback ENV=...` from an operator's machine: one command each.

    deploy     check the prerequisites, read the environment's Terraform outputs, resolve the
               image digests (given, the newest pair CI pushed to ECR, or built and pushed from
               the work tree with --build), wait for the node's SSM agent, bootstrap the node
               when it is not, run deploy.yml, wait for the ALB target to be healthy, and
               smoke-test through the ALB (submit a job, wait for it, fetch an output)
    bootstrap  the same prerequisites and outputs, then the node's own bootstrap (site.yml run
               on the node by the SSM association, scripts/deploy/bundle.sh run), waited for
    rollback   the same prerequisites and outputs, then rollback.yml
    key        the same prerequisites and outputs, then key.yml: an API key made in the cluster
    check      the prerequisites only, one line per missing piece naming the fix
    digests    print the digests `deploy` would use

Standard library only: it runs with any python3 next to the AWS CLI, Terraform and Ansible.
Every failure ends the run with exit status 1 or 2 and one line on stderr saying what to do.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# Where the environment stack lives; PIXTOOLS_TERRAFORM_DIR points at another copy of it.
TERRAFORM_DIR = Path(os.environ.get("PIXTOOLS_TERRAFORM_DIR", ROOT / "terraform"))
ANSIBLE_DIR = ROOT / "ansible"
BUNDLE_SCRIPT = ROOT / "scripts" / "deploy" / "bundle.sh"
REGION = "us-east-1"
ENVIRONMENTS = ("dev", "prod")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
REPOSITORIES = {"api": "pixtools-api", "worker": "pixtools-worker"}
SSM_PLUGIN_URL = "https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html"


class Failed(Exception):
    """A step that cannot go on; the message says what to do."""


def log(message: str) -> None:
    print(f"==> {message}", flush=True)


def run(
    argv: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output (never raising on a non-zero exit)."""
    # The operator's own tools, found on PATH like a shell would; arguments are never a shell.
    return subprocess.run(  # noqa: S603
        list(argv), cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def stream(
    argv: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> None:
    """Run a long command with its output on the terminal; fail with its name."""
    log(" ".join(argv))
    if subprocess.run(list(argv), cwd=cwd, env=env, check=False).returncode != 0:  # noqa: S603
        raise Failed(f"`{' '.join(argv[:3])} ...` failed (its output is above)")


# ---------------------------------------------------------------------------------------------
# Prerequisites
# ---------------------------------------------------------------------------------------------


def ansible_python() -> str | None:
    """The interpreter Ansible runs its controller code with (boto3 must import there)."""
    done = run(["ansible", "--version"])
    match = re.search(r"python version = .*\((\S+)\)", done.stdout)
    return match.group(1) if match else None


def missing_prerequisites(*, build: bool = False) -> list[str]:
    """One line per missing prerequisite, each naming its fix; empty when all are there."""
    problems = []
    if shutil.which("aws") is None:
        problems.append("aws CLI v2 not found: install it (https://aws.amazon.com/cli/)")
    elif run(["aws", "sts", "get-caller-identity", "--output", "json"]).returncode != 0:
        problems.append(
            "no usable AWS credentials: run `aws sso login` or `aws configure`, "
            "or export AWS_PROFILE"
        )
    if shutil.which("session-manager-plugin") is None:
        problems.append(
            "session-manager-plugin not found: install the Session Manager plugin "
            f"({SSM_PLUGIN_URL})"
        )
    if shutil.which("terraform") is None:
        problems.append("terraform not found: install Terraform 1.11 or newer")
    if shutil.which("ansible-playbook") is None:
        problems.append("ansible not found: pip install 'ansible==12.3.0' boto3")
    else:
        listed = run(["ansible-galaxy", "collection", "list", "amazon.aws"])
        if not re.search(r"^amazon\.aws\s", listed.stdout, re.M):
            problems.append(
                "the amazon.aws collection is missing: "
                "ansible-galaxy collection install -r ansible/requirements.yml"
            )
        python = ansible_python()
        if python is None or run([python, "-c", "import boto3, botocore"]).returncode != 0:
            problems.append(
                f"boto3 is missing for Ansible's python ({python or 'unknown'}): "
                f"{python or 'python3'} -m pip install boto3"
            )
    if build and shutil.which("docker") is None:
        problems.append("docker not found: install Docker with buildx to build from the work tree")
    return problems


def require_prerequisites(*, build: bool = False) -> None:
    problems = missing_prerequisites(build=build)
    if problems:
        raise Failed("prerequisites missing:\n  " + "\n  ".join(problems))


# ---------------------------------------------------------------------------------------------
# Terraform outputs
# ---------------------------------------------------------------------------------------------


def terraform_outputs(env: str) -> dict[str, Any]:
    """The environment's outputs (terraform init against its state first)."""
    if not (TERRAFORM_DIR / "backend.hcl").is_file():
        raise Failed(
            "terraform/backend.hcl is missing: copy terraform/backend.hcl.example and fill in the "
            "state bucket of `terraform -chdir=terraform/bootstrap output` (docs/deploy.md)"
        )
    init = run(
        [
            "terraform",
            f"-chdir={TERRAFORM_DIR}",
            "init",
            "-reconfigure",
            "-input=false",
            "-backend-config=backend.hcl",
            f"-backend-config=env/{env}.s3.tfbackend",
        ]
    )
    if init.returncode != 0:
        raise Failed(f"terraform init for {env} failed: {last_line(init.stderr)}")
    out = run(["terraform", f"-chdir={TERRAFORM_DIR}", "output", "-json"])
    if out.returncode != 0:
        raise Failed(f"terraform output failed: {last_line(out.stderr)}")
    outputs = {name: entry["value"] for name, entry in json.loads(out.stdout or "{}").items()}
    needed = ("manifests_bucket_name", "alb_dns_name", "api_target_group_arn")
    if any(name not in outputs for name in needed):
        raise Failed(f"{env} has no infrastructure yet: run `task infra:apply ENV={env}` first")
    return outputs


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


# ---------------------------------------------------------------------------------------------
# Digests
# ---------------------------------------------------------------------------------------------


def ecr_images(repository: str) -> list[dict[str, Any]]:
    done = run(
        [
            "aws",
            "ecr",
            "describe-images",
            "--region",
            REGION,
            "--repository-name",
            repository,
            "--filter",
            "tagStatus=TAGGED",
            "--output",
            "json",
        ]
    )
    if done.returncode != 0:
        raise Failed(
            f"cannot list ECR repository {repository}: {last_line(done.stderr)} "
            "(apply terraform/bootstrap first: it creates the repositories)"
        )
    return list(json.loads(done.stdout).get("imageDetails", []))


def newest_pushed_pair() -> dict[str, str]:
    """The api and worker digests of the newest build that pushed both (same tag, as CI does)."""
    by_tag: dict[str, dict[str, tuple[str, str]]] = {}
    for role, repository in REPOSITORIES.items():
        for image in ecr_images(repository):
            for tag in image.get("imageTags", []):
                by_tag.setdefault(tag, {})[role] = (
                    str(image["imagePushedAt"]),
                    image["imageDigest"],
                )
    pairs = [
        (max(p[0] for p in roles.values()), tag, roles)
        for tag, roles in by_tag.items()
        if set(roles) == set(REPOSITORIES)
    ]
    if not pairs:
        raise Failed(
            "ECR holds no api/worker pair with a common tag: push to main (cd-dev builds them), "
            "or run `task deploy ENV=dev BUILD=1` to build and push from this work tree"
        )
    _, tag, roles = max(pairs)
    log(f"newest images in ECR: tag {tag}")
    return {role: roles[role][1] for role in REPOSITORIES}


def build_and_push(outputs: dict[str, Any]) -> dict[str, str]:
    """Build both Dockerfile targets from the work tree and push them; their digests."""
    urls = outputs.get("ecr_repository_urls") or {}
    registry = str(next(iter(urls.values()))).split("/", 1)[0] if urls else ""
    if not registry:
        raise Failed("terraform output ecr_repository_urls is empty: apply terraform/bootstrap")
    password = run(["aws", "ecr", "get-login-password", "--region", REGION])
    if password.returncode != 0:
        raise Failed(f"ECR login failed: {last_line(password.stderr)}")
    login = subprocess.run(  # noqa: S603
        ["docker", "login", "--username", "AWS", "--password-stdin", registry],  # noqa: S607
        input=password.stdout,
        capture_output=True,
        text=True,
        check=False,
    )
    if login.returncode != 0:
        raise Failed(f"docker login to {registry} failed: {last_line(login.stderr)}")
    commit = (
        run(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"]).stdout.strip() or "local"
    )
    tag = f"{commit}-local-{time.strftime('%Y%m%d%H%M%S')}"  # ECR tags are immutable
    digests = {}
    for role, repository in REPOSITORIES.items():
        metadata = ROOT / f".build-{role}.json"
        stream(
            [
                "docker",
                "buildx",
                "build",
                "--target",
                role,
                "--push",
                "--tag",
                f"{registry}/{repository}:{tag}",
                "--metadata-file",
                str(metadata),
                str(ROOT),
            ]
        )
        digests[role] = json.loads(metadata.read_text())["containerimage.digest"]
        metadata.unlink()
    return digests


def resolve_digests(args: argparse.Namespace, outputs: dict[str, Any] | None) -> dict[str, str]:
    if args.api_digest or args.worker_digest:
        digests = {"api": args.api_digest or "", "worker": args.worker_digest or ""}
    elif args.build:
        assert outputs is not None
        digests = build_and_push(outputs)
    else:
        digests = newest_pushed_pair()
    for role, digest in digests.items():
        if not DIGEST.match(digest):
            raise Failed(f"{role} digest {digest!r} is not sha256:<64 lowercase hex>")
    return digests


# ---------------------------------------------------------------------------------------------
# The node, Ansible, the ALB
# ---------------------------------------------------------------------------------------------


def ansible_env(outputs: dict[str, Any]) -> dict[str, str]:
    return {
        **os.environ,
        "PIXTOOLS_SSM_BUCKET": str(outputs["manifests_bucket_name"]),
        # site.yml's monitoring role routes Alertmanager to the environment's alarm topic.
        "PIXTOOLS_ALARM_TOPIC_ARN": str(outputs.get("alarm_topic_arn", "")),
        "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"),
    }


def newest_node(env: str) -> str | None:
    """The environment's newest pending or running K3s instance (by launch time), if any.

    With the ASG's capacity rebalance two tagged instances exist for a while: the old one,
    about to be reclaimed (and maybe already unreachable), and its replacement. Everything a
    deploy does goes to the replacement, as roles/node_target chooses in the playbooks.
    """
    done = run(
        [
            "aws",
            "ec2",
            "describe-instances",
            "--region",
            REGION,
            "--filters",
            "Name=tag:Project,Values=pixtools",
            f"Name=tag:Environment,Values={env}",
            "Name=tag:Role,Values=k3s-server",
            "Name=instance-state-name,Values=pending,running",
            "--output",
            "json",
        ]
    )
    if done.returncode != 0:
        raise Failed(f"cannot list the {env} instances: {last_line(done.stderr)}")
    instances = [
        i
        for r in json.loads(done.stdout or "{}").get("Reservations", [])
        for i in r.get("Instances", [])
    ]
    if not instances:
        return None
    return str(
        max(instances, key=lambda i: (str(i.get("LaunchTime", "")), i["InstanceId"]))["InstanceId"]
    )


def ssm_online(instance_id: str) -> bool:
    """Whether the instance's SSM agent answers (a new instance registers within minutes)."""
    done = run(
        [
            "aws",
            "ssm",
            "describe-instance-information",
            "--region",
            REGION,
            "--filters",
            f"Key=InstanceIds,Values={instance_id}",
            "--output",
            "json",
        ]
    )
    if done.returncode != 0:
        return False
    return any(
        i.get("InstanceId") == instance_id and i.get("PingStatus") == "Online"
        for i in json.loads(done.stdout or "{}").get("InstanceInformationList", [])
    )


def wait_for_node(env: str, timeout: float) -> str:
    """The newest node of the environment once its SSM agent answers; its instance ID.

    A node being replaced counts as gone: the deploy waits for the newest instance (a starting
    replacement included) rather than acting on the old one.
    """
    deadline = time.monotonic() + timeout
    while True:
        node = newest_node(env)
        if node is not None and ssm_online(node):
            log(f"node online in SSM: {node}")
            return node
        if time.monotonic() > deadline:
            what = f"{env} node {node} is not online in SSM" if node else f"no {env} K3s node runs"
            raise Failed(
                f"{what}: check the ASG "
                "(`aws autoscaling describe-auto-scaling-groups`) and the instance's SSM agent"
            )
        time.sleep(15)


def on_node(
    env: str, node: str, outputs: dict[str, Any], command: str
) -> subprocess.CompletedProcess[str]:
    """Run a command as root on one node of one environment (hosts are instance IDs), over SSM."""
    return run(
        [
            "ansible",
            f"k3s_server:&{env}:&{node}",
            "--become",
            "-m",
            "ansible.builtin.command",
            "-a",
            command,
        ],
        cwd=ANSIBLE_DIR,
        env=ansible_env(outputs),
    )


# What site.yml's last role writes on the node (roles/bootstrap_done), and deploy.yml waits for.
BOOTSTRAPPED_MARKER = "/var/lib/pixtools/bootstrapped"


def node_is_bootstrapped(env: str, node: str, outputs: dict[str, Any]) -> bool:
    """Whether site.yml has run to its end on the environment's node(s).

    Not the charts' CRDs: they live in the cluster stored in RDS, so a replacement node whose
    bootstrap has not finished would already show them.
    """
    done = on_node(env, node, outputs, f"test -f {BOOTSTRAPPED_MARKER}")
    return done.returncode == 0


def wait_for_target(outputs: dict[str, Any], timeout: float) -> None:
    """Until the ALB's target group has a healthy target (the node, via the binding)."""
    deadline = time.monotonic() + timeout
    states: list[str] = []
    while time.monotonic() < deadline:
        done = run(
            [
                "aws",
                "elbv2",
                "describe-target-health",
                "--region",
                REGION,
                "--target-group-arn",
                str(outputs["api_target_group_arn"]),
                "--output",
                "json",
            ]
        )
        if done.returncode == 0:
            states = [
                d["TargetHealth"]["State"]
                for d in json.loads(done.stdout)["TargetHealthDescriptions"]
            ]
            if "healthy" in states:
                return
        time.sleep(10)
    raise Failed(
        f"the ALB target group has no healthy target (states: {states or 'none registered'}): "
        "see docs/deploy.md, 'The ALB answers 503'"
    )


# ---------------------------------------------------------------------------------------------
# Smoke test through the ALB
# ---------------------------------------------------------------------------------------------


def tiny_png() -> bytes:
    """A valid 8x8 RGB PNG, written by hand (no imaging library needed here)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    raw = b"".join(
        b"\x00" + b"".join(bytes([x * 32, y * 32, 128]) for x in range(8)) for y in range(8)
    )
    header = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def request(
    method: str, url: str, key: str, body: bytes | None = None, content_type: str | None = None
) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if content_type:
        headers["Content-Type"] = content_type
    # Always the http:// URL built from the ALB's DNS name.
    req = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310
    # Presigned S3 redirects must not carry the API key.
    opener = urllib.request.build_opener(NoAuthOnRedirect())
    try:
        with opener.open(req, timeout=90) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())


class NoAuthOnRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(
        self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            new.remove_header("Authorization")
        return new


def smoke_test(base_url: str, key: str) -> str:
    """Submit a job, wait for it with ?wait=, fetch its output; the job ID when all worked."""
    boundary = secrets.token_hex(16)
    spec = json.dumps({"outputs": [{"name": "smoke", "steps": [{"op": "grayscale"}]}]})
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="spec"\r\n\r\n{spec}\r\n'.encode(),
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="smoke.png"\r\n'
        "Content-Type: image/png\r\n\r\n".encode()
        + tiny_png()
        + b"\r\n",
        f"--{boundary}--\r\n".encode(),
    ]
    status, body = request(
        "POST",
        f"{base_url}/api/v1/jobs",
        key,
        b"".join(parts),
        f"multipart/form-data; boundary={boundary}",
    )
    if status not in (200, 202):
        raise Failed(f"smoke test: POST /api/v1/jobs answered {status}: {body[:200]!r}")
    job = json.loads(body)
    for _ in range(10):
        status, body = request("GET", f"{base_url}/api/v1/jobs/{job['id']}?wait=30", key)
        if status != 200:
            raise Failed(f"smoke test: GET /api/v1/jobs/{job['id']} answered {status}")
        job = json.loads(body)
        if job["status"] not in ("queued", "running"):
            break
    outputs = {o["name"]: o for o in job.get("outputs", [])}
    if outputs.get("smoke", {}).get("status") != "succeeded":
        raise Failed(f"smoke test: job {job['id']} ended {job['status']}: {job.get('error')}")
    status, data = request("GET", f"{base_url}/api/v1/jobs/{job['id']}/outputs/smoke", key)
    if status != 200 or not data:
        raise Failed(f"smoke test: fetching the output answered {status}")
    return str(job["id"])


def with_smoke_key(env: str, node: str, outputs: dict[str, Any], use: Any) -> None:
    """Run use(key) with PIXTOOLS_API_KEY, or a key made for it on the node and revoked after."""
    given = os.environ.get("PIXTOOLS_API_KEY", "")
    if given:
        use(given)
        return
    exec_ = "/usr/local/bin/kubectl -n pixtools exec deploy/api -c api -- pixtools keys"
    made = on_node(env, node, outputs, f"{exec_} create deploy-smoke")
    # Every key the command printed is revoked afterwards, not only the one used.
    key_ids = re.findall(r"created key (\S+)", made.stdout)
    secret = re.search(r"store it now\): (\S+)", made.stdout)
    try:
        if made.returncode != 0 or not key_ids or not secret:
            raise Failed(
                "could not create a smoke-test key on the node: export PIXTOOLS_API_KEY=<a key>"
            )
        use(secret.group(1))
    finally:
        for key_id in key_ids:
            on_node(env, node, outputs, f"{exec_} revoke {key_id}")


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------


def bundle_env(outputs: dict[str, Any]) -> dict[str, str]:
    """Where bundle.sh finds the bundle URI and the association: the Terraform outputs."""
    extra = {}
    if outputs.get("bootstrap_bundle_uri"):
        extra["PIXTOOLS_BUNDLE_URI"] = str(outputs["bootstrap_bundle_uri"])
    if outputs.get("node_bootstrap_association_id"):
        extra["PIXTOOLS_ASSOCIATION_ID"] = str(outputs["node_bootstrap_association_id"])
    return {**os.environ, **extra}


def upload_bundle(env: str, outputs: dict[str, Any]) -> None:
    """Put this commit's playbook bundle where every new node bootstraps itself from
    (terraform/node_bootstrap.tf): a spot replacement then runs what was last deployed."""
    stream(["bash", str(BUNDLE_SCRIPT), "upload", env], env=bundle_env(outputs))


def bootstrap(env: str, outputs: dict[str, Any]) -> None:
    """Upload the bundle, run the node's own bootstrap once more and wait for it.

    Through the SSM association, never site.yml from this machine: the node may be running its
    self-bootstrap right now (a fresh or replaced instance), and only runs on the node are
    serialised by node-bootstrap.sh's lock.
    """
    stream(["bash", str(BUNDLE_SCRIPT), "run", env], env=bundle_env(outputs))


def cmd_check(args: argparse.Namespace) -> None:
    require_prerequisites(build=args.build)
    log("all prerequisites present")


def cmd_digests(args: argparse.Namespace) -> None:
    require_prerequisites(build=args.build)
    outputs = terraform_outputs(args.env) if args.build else None
    print(json.dumps(resolve_digests(args, outputs)))


def cmd_bootstrap(args: argparse.Namespace) -> None:
    require_prerequisites()
    outputs = terraform_outputs(args.env)
    wait_for_node(args.env, args.node_timeout)
    bootstrap(args.env, outputs)


def playbook(name: str, env: str, node: str, outputs: dict[str, Any], **extra_vars: str) -> None:
    """Run one playbook on the chosen node of the environment, through its transfer bucket."""
    variables = {"env": env, "node_target_instance": node, **extra_vars}
    stream(
        [
            "ansible-playbook",
            name,
            *(arg for key, value in variables.items() for arg in ("-e", f"{key}={value}")),
        ],
        cwd=ANSIBLE_DIR,
        env=ansible_env(outputs),
    )


def cmd_key(args: argparse.Namespace) -> None:
    """key.yml with the environment's transfer bucket: the first (admin) key, printed once."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", args.name or ""):
        raise Failed("NAME= is required: 1-64 letters, digits, . _ - (who the key is for)")
    require_prerequisites()
    outputs = terraform_outputs(args.env)
    node = wait_for_node(args.env, args.node_timeout)
    admin = "false" if args.no_admin else "true"
    playbook("key.yml", args.env, node, outputs, key_name=args.name, key_admin=admin)


def cmd_rollback(args: argparse.Namespace) -> None:
    require_prerequisites()
    outputs = terraform_outputs(args.env)
    node = wait_for_node(args.env, args.node_timeout)
    playbook("rollback.yml", args.env, node, outputs)


def cmd_deploy(args: argparse.Namespace) -> None:
    require_prerequisites(build=args.build)
    outputs = terraform_outputs(args.env)
    digests = resolve_digests(args, outputs)
    log(f"deploying api {digests['api']}, worker {digests['worker']} to {args.env}")
    node = wait_for_node(args.env, args.node_timeout)
    if node_is_bootstrapped(args.env, node, outputs):
        log("node already bootstrapped")
        upload_bundle(args.env, outputs)
    else:
        log("node not bootstrapped yet: running its bootstrap (site.yml on the node)")
        bootstrap(args.env, outputs)
    playbook(
        "deploy.yml",
        args.env,
        node,
        outputs,
        api_digest=digests["api"],
        worker_digest=digests["worker"],
    )
    if args.skip_smoke:
        return
    wait_for_target(outputs, args.target_timeout)
    base_url = f"http://{outputs['alb_dns_name']}"
    log(f"smoke test through {base_url}")
    with_smoke_key(
        args.env, node, outputs, lambda key: log(f"job {smoke_test(base_url, key)} processed")
    )
    log(f"{args.env} is up: {base_url}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    commands = {
        "deploy": cmd_deploy,
        "bootstrap": cmd_bootstrap,
        "rollback": cmd_rollback,
        "key": cmd_key,
        "check": cmd_check,
        "digests": cmd_digests,
    }
    for name, fn in commands.items():
        cmd = sub.add_parser(name)
        cmd.set_defaults(fn=fn)
        cmd.add_argument("--env", choices=ENVIRONMENTS, required=name != "check")
        cmd.add_argument(
            "--build",
            action="store_true",
            help="build both images from the work tree and push them to ECR",
        )
        cmd.add_argument("--api-digest", default="")
        cmd.add_argument("--worker-digest", default="")
        cmd.add_argument("--skip-smoke", action="store_true")
        cmd.add_argument("--name", default="", help="key: who or what the API key is for")
        cmd.add_argument("--no-admin", action="store_true", help="key: without admin rights")
        cmd.add_argument("--node-timeout", type=float, default=900)
        cmd.add_argument("--target-timeout", type=float, default=600)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.fn(args)
    except Failed as exc:
        print(f"deploy: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
