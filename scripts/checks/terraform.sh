#!/usr/bin/env bash
# The Terraform checks, all offline; CI calls this one script.
#
#   1. terraform fmt -check -recursive terraform/
#   2. terraform init -backend=false (provider from the local mirror) + validate, for the root
#      module (with modules/) and bootstrap/, in a scratch copy so the work tree gets no
#      .terraform/ or lock file from a mirror-only init
#   3. tests/infra (python-hcl2 + pytest): the sprint plan's locked decisions
#   4. checkov over terraform/, skips listed with reasons in terraform/.checkov.yaml
#
# Tools live in their own virtual environments, created or refreshed here when their pinned
# requirements change: .venv-infra (python-hcl2, pytest) and .venv-checkov (checkov pins an
# old boto3 that must not meet the app's). Every step runs; the script exits 1 if any failed.
#
# Environment: TF_PLUGIN_DIR (default /opt/tf-plugins, holding hashicorp/aws 5.100.x),
# PYTHON (default python3), INFRA_VENV, CHECKOV_VENV.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/checks/lib.sh
source "$ROOT/scripts/checks/lib.sh"

TF_PLUGIN_DIR=${TF_PLUGIN_DIR:-/opt/tf-plugins}
PYTHON=${PYTHON:-python3}
INFRA_VENV=${INFRA_VENV:-$ROOT/.venv-infra}
CHECKOV_VENV=${CHECKOV_VENV:-$ROOT/.venv-checkov}
INFRA_REQUIREMENTS=(python-hcl2==8.1.4 pytest==9.2.0)
CHECKOV_REQUIREMENTS=(checkov==3.3.30)

export TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1
# A TF_CLI_CONFIG_FILE that names a missing file only makes every command print a warning.
if [[ -n ${TF_CLI_CONFIG_FILE:-} && ! -e $TF_CLI_CONFIG_FILE ]]; then
  unset TF_CLI_CONFIG_FILE
fi

tf_validate() {
  local dir=$1
  terraform -chdir="$dir" init -backend=false -input=false -no-color -plugin-dir="$TF_PLUGIN_DIR" >"$dir/.init.log" 2>&1 ||
    { cat "$dir/.init.log" >&2; return 1; }
  terraform -chdir="$dir" validate -no-color
}

command -v terraform >/dev/null || { echo "*** FAILED: terraform is not installed ***" >&2; exit 1; }
[[ -d $TF_PLUGIN_DIR ]] || { echo "*** FAILED: provider mirror $TF_PLUGIN_DIR is missing ***" >&2; exit 1; }

step "tool environments"
ensure_venv "$INFRA_VENV" "${INFRA_REQUIREMENTS[@]}"
ensure_venv "$CHECKOV_VENV" "${CHECKOV_REQUIREMENTS[@]}"
terraform version | sed -n 1p

step "terraform fmt -check -recursive"
check "terraform fmt" terraform fmt -check -recursive -diff -no-color terraform

step "terraform init -backend=false + validate (root, bootstrap)"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# Copy the sources only: no local .terraform/, state or lock file from a developer's own init.
tar -C "$ROOT" --exclude='.terraform' --exclude='*.tfstate*' --exclude='.terraform.lock.hcl' -cf - terraform |
  tar -C "$scratch" -xf -
check "terraform validate (root)" tf_validate "$scratch/terraform"
check "terraform validate (bootstrap)" tf_validate "$scratch/terraform/bootstrap"

step "locked decisions (tests/infra)"
# An empty -c and --confcutdir keep the app's pytest settings and conftest (and their plugins)
# out of this venv; the main suite runs the same file with its own settings.
check "pytest tests/infra" "$INFRA_VENV/bin/python" -m pytest -c /dev/null --rootdir="$ROOT" \
  --confcutdir="$ROOT/tests/infra" -p no:cacheprovider -q tests/infra

step "checkov (terraform/.checkov.yaml)"
check "checkov" "$CHECKOV_VENV/bin/checkov" --directory terraform --config-file terraform/.checkov.yaml

finish "terraform checks"
