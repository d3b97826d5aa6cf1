#!/usr/bin/env bash
# The Terraform applied for real, against an AWS-shaped API: moto's server mode on a loopback port.
#
#   1. bootstrap/ (local state): apply, a second plan (must be empty or every diff explained)
#   2. the root module for dev and prod in the same account (local state per environment,
#      -var-file=env/<env>.tfvars), the two environments side by side:
#      a plan of the whole configuration (the budget included), apply, a second plan,
#      then the locked decisions asserted on `terraform show -json` of the applied state
#      (scripts/checks/tf_apply_assert.py), with the generated secrets read back from moto's SSM
#      and searched for in the state file
#   3. destroy: prod first drops its deletion protection by an apply with
#      deletion_protection=false (what an operator does), then both environments, then bootstrap
#      (its prevent_destroy and the lock table's deletion protection lifted in the scratch copy);
#      every state must end empty and moto must hold none of our resources
#
# Nothing in the work tree changes: terraform/ is copied to a scratch directory, and generated
# *_override.tf files there point every AWS endpoint at moto (dummy credentials), switch the
# backend to local state, and exclude what moto cannot serve:
#   - aws_budgets_budget.monthly: moto's Budgets hangs on DescribeSubscribersForNotification, which
#     the provider calls after CreateBudget. count = 0 in the scratch copy; the budget still
#     appears in the whole-configuration plan, and the asserter checks that the applied state
#     holds exactly the planned resources minus that one.
# moto itself runs through scripts/checks/tfapply/moto_server.py, which gives each RDS instance
# its own resource id (moto 5 gives all the same one; two environments then collide).
#
# Prints: resources per configuration, the second plans' remaining diffs with their reasons, and
# the time of each phase. Every terraform command has a timeout; moto and the scratch directory
# are removed on any exit. Exit 1 on any failure.
#
# Environment: TF_PLUGIN_DIR (default /opt/tf-plugins), VENV (default .venv: moto[server] and
# boto3 from the dev extra), TF_APPLY_KEEP=1 keeps the scratch directory for a post-mortem.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

TF_PLUGIN_DIR=${TF_PLUGIN_DIR:-/opt/tf-plugins}
VENV=${VENV:-$ROOT/.venv}
PY=$VENV/bin/python
ASSERT=$ROOT/scripts/checks/tf_apply_assert.py
ENVS=(dev prod)
# Per-command bounds (seconds). moto answers at once, but the provider's waiters poll: an RDS
# instance takes 2-3 minutes, a bucket lifecycle about one.
APPLY_TIMEOUT=${TF_APPLY_APPLY_TIMEOUT:-900}
PLAN_TIMEOUT=${TF_APPLY_PLAN_TIMEOUT:-420}
INIT_TIMEOUT=120

export TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1
if [[ -n ${TF_CLI_CONFIG_FILE:-} && ! -e $TF_CLI_CONFIG_FILE ]]; then
  unset TF_CLI_CONFIG_FILE
fi
# Only ever moto: dummy credentials, no profile, no shared config, no instance metadata.
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 \
  AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true

fail() {
  printf '\n*** FAILED: tf-apply: %s ***\n' "$*" >&2
  exit 1
}

command -v terraform >/dev/null || fail "terraform is not installed"
[[ -d $TF_PLUGIN_DIR ]] || fail "provider mirror $TF_PLUGIN_DIR is missing"
"$PY" -c 'import moto.server, boto3' 2>/dev/null || fail "$VENV lacks moto[server]/boto3 (pip install -e '.[dev]')"

work=$(mktemp -d "${TMPDIR:-/tmp}/pixtools-tf-apply.XXXXXX")
moto_pid=
# kill_tree PID: PID and all its descendants, children first (a background phase runs
# subshell -> timeout -> terraform; killing the subshell alone would orphan terraform).
kill_tree() {
  local child
  for child in $(pgrep -P "$1"); do kill_tree "$child"; done
  kill "$1" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  # Anything still running in the background (the other side of a failed parallel phase).
  local job
  for job in $(jobs -pr); do kill_tree "$job"; done
  if [[ -n $moto_pid ]] && kill -0 "$moto_pid" 2>/dev/null; then
    kill "$moto_pid" 2>/dev/null
    wait "$moto_pid" 2>/dev/null || true
  fi
  if [[ ${TF_APPLY_KEEP:-0} == 1 ]]; then
    echo "scratch directory kept: $work"
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

started=$SECONDS
phase_started=$SECONDS
timings=()
phase() {
  printf '\n==> %s\n' "$*"
  phase_name=$*
  phase_started=$SECONDS
}
phase_done() {
  local took=$((SECONDS - phase_started))
  timings+=("$(printf '%-48s %5ds' "$phase_name" "$took")")
  printf -- '-- %ds\n' "$took"
}

# --- moto --------------------------------------------------------------------------------------
phase "moto server"
port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
endpoint="http://127.0.0.1:$port"
# Managed policies (AmazonSSMManagedInstanceCore) exist only when moto loads them.
MOTO_IAM_LOAD_MANAGED_POLICIES=true "$PY" "$ROOT/scripts/checks/tfapply/moto_server.py" "$port" \
  >"$work/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 60); do
  curl -fs -o /dev/null "$endpoint/moto-api/" && break
  kill -0 "$moto_pid" 2>/dev/null || { cat "$work/moto.log" >&2; fail "moto exited"; }
  sleep 1
done
curl -fs -o /dev/null "$endpoint/moto-api/" || fail "moto did not answer on $endpoint within 60 s"
echo "moto $("$PY" -c 'import moto; print(moto.__version__)') on $endpoint"
phase_done

# --- scratch copy and overrides ----------------------------------------------------------------
tree=$work/terraform
tar -C "$ROOT" --exclude='.terraform' --exclude='*.tfstate*' --exclude='.terraform.lock.hcl' \
  --exclude='*_override.tf' -cf - terraform | tar -C "$work" -xf -

# Every service the configurations call, at moto; the provider block of the committed code
# stays as it is (override files merge into it).
services=(autoscaling budgets cloudwatch dynamodb ec2 ecr elbv2 iam kms logs rds s3 secretsmanager
  sns ssm sts wafv2)
{
  echo '# Generated by scripts/checks/tf-apply.sh: this scratch copy talks to moto only.'
  echo 'provider "aws" {'
  echo '  access_key                  = "testing"'
  echo '  secret_key                  = "testing"'
  echo '  skip_credentials_validation = true'
  echo '  skip_metadata_api_check     = true'
  echo '  skip_region_validation      = true'
  echo '  s3_use_path_style           = true'
  echo '  endpoints {'
  for service in "${services[@]}"; do printf '    %-14s = "%s"\n' "$service" "$endpoint"; done
  echo '  }'
  echo '}'
} >"$work/provider_override.tf"
cp "$work/provider_override.tf" "$tree/bootstrap/moto_provider_override.tf"
cp "$work/provider_override.tf" "$tree/moto_provider_override.tf"
cat >"$tree/moto_backend_override.tf" <<'EOF'
# Generated by scripts/checks/tf-apply.sh: local state per environment (-backend-config=path=...).
terraform {
  backend "local" {}
}
EOF
# Added after the whole-configuration plan (see the header).
cat >"$work/moto_budget_override.tf" <<'EOF'
# Generated by scripts/checks/tf-apply.sh: moto's Budgets hangs on
# DescribeSubscribersForNotification, so the budget is left out of the apply against moto.
resource "aws_budgets_budget" "monthly" {
  count = 0
}
EOF

# tf LABEL DIR TIMEOUT ARGS...: terraform in DIR with the environment's data dir, output in
# $work/logs/LABEL.log; on failure the log's tail is shown.
mkdir -p "$work/logs" "$work/out"
# The asserter appends its figures here (resources applied, remaining diffs); printed at the end.
export TF_APPLY_SUMMARY=$work/summary.txt
: >"$TF_APPLY_SUMMARY"
tf() {
  local label=$1 dir=$2 limit=$3
  shift 3
  local log=$work/logs/$label.log rc=0
  TF_DATA_DIR=$work/data-${label%%-*} timeout -k 30 "$limit" terraform -chdir="$dir" "$@" -no-color >>"$log" 2>&1 || rc=$?
  if ((rc != 0 && rc != 2)) || { ((rc == 2)) && [[ " $* " != *" -detailed-exitcode "* ]]; }; then
    echo "--- $label: terraform $1 failed (exit $rc; 124 = timeout); last lines of its log:" >&2
    tail -n 40 "$log" >&2
    return 1
  fi
  return 0
}

# parallel FUNCTION: run FUNCTION ENV for every environment at once; fail if any failed.
parallel() {
  local fn=$1 pids=() env rc=0
  for env in "${ENVS[@]}"; do
    "$fn" "$env" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
  return "$rc"
}

# second_plan LABEL DIR ARGS...: plan again after apply; list every remaining change with its
# reason (the asserter knows the explained ones and fails on any other).
second_plan() {
  local label=$1 dir=$2
  shift 2
  tf "$label-plan2" "$dir" "$PLAN_TIMEOUT" plan -input=false -detailed-exitcode -out="$work/out/$label.plan2" "$@" &&
    show_json "$label" "$dir" "$work/out/$label.plan2.json" "$work/out/$label.plan2"
}

# show_json LABEL DIR OUT [PLANFILE]: terraform show -json of the state (or of PLANFILE) into OUT.
show_json() {
  local label=$1 dir=$2 out=$3
  shift 3
  TF_DATA_DIR=$work/data-${label%%-*} timeout 120 terraform -chdir="$dir" show -json -no-color "$@" >"$out" ||
    { echo "--- $label: terraform show -json failed" >&2; return 1; }
}

# --- bootstrap ---------------------------------------------------------------------------------
phase "bootstrap: apply, second plan, assertions"
tf bootstrap "$tree/bootstrap" "$INIT_TIMEOUT" init -input=false -plugin-dir="$TF_PLUGIN_DIR" || fail "bootstrap init"
tf bootstrap "$tree/bootstrap" "$APPLY_TIMEOUT" apply -input=false -auto-approve || fail "bootstrap apply"
second_plan bootstrap "$tree/bootstrap" || fail "bootstrap second plan"
show_json bootstrap "$tree/bootstrap" "$work/out/bootstrap.state.json" || fail "bootstrap show"
"$PY" "$ASSERT" bootstrap --state "$work/out/bootstrap.state.json" --plan "$work/out/bootstrap.plan2.json" ||
  fail "bootstrap assertions"
phase_done

# --- dev and prod ------------------------------------------------------------------------------
env_init() {
  local env=$1
  tf "$env" "$tree" "$INIT_TIMEOUT" init -input=false -plugin-dir="$TF_PLUGIN_DIR" \
    -backend-config="path=$work/$env.tfstate"
}
env_full_plan() {
  local env=$1
  tf "$env-plan1" "$tree" "$PLAN_TIMEOUT" plan -input=false -var-file="env/$env.tfvars" -out="$work/out/$env.plan1" &&
    show_json "$env" "$tree" "$work/out/$env.plan1.json" "$work/out/$env.plan1"
}
env_apply() {
  local env=$1
  tf "$env-apply" "$tree" "$APPLY_TIMEOUT" apply -input=false -auto-approve -var-file="env/$env.tfvars"
}
env_second_plan() {
  local env=$1
  second_plan "$env" "$tree" -var-file="env/$env.tfvars"
}

phase "dev+prod: plan of the whole configuration"
env_init dev || fail "init (dev)"
env_init prod || fail "init (prod)"
parallel env_full_plan || fail "whole-configuration plan"
phase_done

phase "dev+prod: apply (the budget excluded)"
cp "$work/moto_budget_override.tf" "$tree/moto_budget_override.tf"
parallel env_apply || fail "apply"
phase_done

phase "dev+prod: second plan, assertions"
parallel env_second_plan || fail "second plan"
for env in "${ENVS[@]}"; do
  show_json "$env" "$tree" "$work/out/$env.state.json" || fail "show ($env)"
  "$PY" "$ASSERT" environment --env "$env" --endpoint "$endpoint" \
    --state "$work/out/$env.state.json" --state-file "$work/$env.tfstate" \
    --full-plan "$work/out/$env.plan1.json" --plan "$work/out/$env.plan2.json" ||
    fail "locked decisions ($env)"
done
phase_done

# --- destroy -----------------------------------------------------------------------------------
phase "dev+prod: prod unprotected, both destroyed"
tf prod-unprotect "$tree" "$APPLY_TIMEOUT" apply -input=false -auto-approve -var-file=env/prod.tfvars \
  -var=deletion_protection=false || fail "prod: apply with deletion_protection=false"
env_destroy() {
  local env=$1
  tf "$env-destroy" "$tree" "$APPLY_TIMEOUT" destroy -input=false -auto-approve -var-file="env/$env.tfvars" \
    -var=deletion_protection=false
}
parallel env_destroy || fail "destroy"
phase_done

phase "bootstrap: unprotected, destroyed"
cat >"$tree/bootstrap/moto_destroy_override.tf" <<'EOF'
# Generated by scripts/checks/tf-apply.sh for its final destroy only.
resource "aws_s3_bucket" "state" {
  lifecycle {
    prevent_destroy = false
  }
}

resource "aws_dynamodb_table" "locks" {
  deletion_protection_enabled = false

  lifecycle {
    prevent_destroy = false
  }
}
EOF
tf bootstrap-unprotect "$tree/bootstrap" "$APPLY_TIMEOUT" apply -input=false -auto-approve || fail "bootstrap unprotect"
tf bootstrap-destroy "$tree/bootstrap" "$APPLY_TIMEOUT" destroy -input=false -auto-approve || fail "bootstrap destroy"
"$PY" "$ASSERT" destroyed --endpoint "$endpoint" \
  --state-file "$work/dev.tfstate" --state-file "$work/prod.tfstate" \
  --state-file "$tree/bootstrap/terraform.tfstate" || fail "leftovers after destroy"
phase_done

printf '\n== tf-apply: figures\n'
sed 's/^/  /' "$TF_APPLY_SUMMARY"
printf '\n== tf-apply: timings\n'
printf '  %s\n' "${timings[@]}"
printf '  %-48s %5ds\n' "total" "$((SECONDS - started))"
printf '\n== tf-apply: bootstrap, dev and prod applied against moto, asserted and destroyed\n'
