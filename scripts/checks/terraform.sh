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

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"

TF_PLUGIN_DIR=${TF_PLUGIN_DIR:-/opt/tf-plugins}
PYTHON=${PYTHON:-python3}
INFRA_VENV=${INFRA_VENV:-$repo/.venv-infra}
CHECKOV_VENV=${CHECKOV_VENV:-$repo/.venv-checkov}
INFRA_REQUIREMENTS=(python-hcl2==8.1.4 pytest==9.2.0)
CHECKOV_REQUIREMENTS=(checkov==3.3.30)

export TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1
# A TF_CLI_CONFIG_FILE that names a missing file only makes every command print a warning.
if [[ -n ${TF_CLI_CONFIG_FILE:-} && ! -e $TF_CLI_CONFIG_FILE ]]; then
  unset TF_CLI_CONFIG_FILE
fi

failed=()
section() { printf '\n==> %s\n' "$*"; }
check() {
  local name=$1
  shift
  if "$@"; then
    printf 'ok: %s\n' "$name"
  else
    printf '\n*** FAILED: %s ***\n' "$name" >&2
    failed+=("$name")
  fi
}

# ensure_venv DIR REQUIREMENT...: create DIR and install the pinned requirements unless the venv
# already holds exactly them (recorded in DIR/.requirements after a successful install).
ensure_venv() {
  local venv=$1
  shift
  local wanted
  wanted=$(printf '%s\n' "$@")
  if [[ -x $venv/bin/python && -f $venv/.requirements && $(<"$venv/.requirements") == "$wanted" ]]; then
    return 0
  fi
  printf 'setting up %s: %s\n' "${venv#"$repo"/}" "$*"
  [[ -x $venv/bin/python ]] || "$PYTHON" -m venv "$venv"
  local log
  log=$(mktemp)
  if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    printf '\n*** FAILED: pip install into %s ***\n' "$venv" >&2
    exit 1
  fi
  rm -f "$log"
  printf '%s' "$wanted" >"$venv/.requirements"
}

tf_validate() {
  local dir=$1
  terraform -chdir="$dir" init -backend=false -input=false -no-color -plugin-dir="$TF_PLUGIN_DIR" >"$dir/.init.log" 2>&1 ||
    { cat "$dir/.init.log" >&2; return 1; }
  terraform -chdir="$dir" validate -no-color
}

command -v terraform >/dev/null || { echo "*** FAILED: terraform is not installed ***" >&2; exit 1; }
[[ -d $TF_PLUGIN_DIR ]] || { echo "*** FAILED: provider mirror $TF_PLUGIN_DIR is missing ***" >&2; exit 1; }

section "tool environments"
ensure_venv "$INFRA_VENV" "${INFRA_REQUIREMENTS[@]}"
ensure_venv "$CHECKOV_VENV" "${CHECKOV_REQUIREMENTS[@]}"
terraform version | head -n 1

section "terraform fmt -check -recursive"
check "terraform fmt" terraform fmt -check -recursive -diff -no-color terraform

section "terraform init -backend=false + validate (root, bootstrap)"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# Copy the sources only: no local .terraform/, state or lock file from a developer's own init.
tar -C "$repo" --exclude='.terraform' --exclude='*.tfstate*' --exclude='.terraform.lock.hcl' -cf - terraform |
  tar -C "$scratch" -xf -
check "terraform validate (root)" tf_validate "$scratch/terraform"
check "terraform validate (bootstrap)" tf_validate "$scratch/terraform/bootstrap"

section "locked decisions (tests/infra)"
# An empty -c and --confcutdir keep the app's pytest settings and conftest (and their plugins)
# out of this venv; the main suite runs the same file with its own settings.
check "pytest tests/infra" "$INFRA_VENV/bin/python" -m pytest -c /dev/null --rootdir="$repo" \
  --confcutdir="$repo/tests/infra" -p no:cacheprovider -q tests/infra

section "checkov (terraform/.checkov.yaml)"
check "checkov" "$CHECKOV_VENV/bin/checkov" --directory terraform --config-file terraform/.checkov.yaml

echo
if ((${#failed[@]})); then
  printf '*** terraform checks FAILED ***\n' >&2
  printf '  - %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "terraform checks passed"
