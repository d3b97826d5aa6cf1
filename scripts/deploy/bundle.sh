#!/usr/bin/env bash
# The playbook bundle every new K3s node bootstraps itself from (terraform/node_bootstrap.tf).
#
#   bundle.sh build OUT.tar.gz [REF]   pack ansible/, manifests/ and scripts/deploy/ of a commit
#                                      (default HEAD) plus a REVISION file; offline
#   bundle.sh upload ENV [REF]         build, then upload to the environment's bundle URI
#   bundle.sh run ENV [REF]            upload, start the bootstrap association once on the node
#                                      and wait for its result (what `task bootstrap` calls)
#
# The bundle is a commit, not the work tree: what a replacement node runs at 3 a.m. is something
# that was committed (uncommitted changes are reported and left out).
#
# Needs for upload/run: the AWS CLI with credentials for the environment's account. Where things
# are is derived from the naming in terraform/ (bucket pixtools-<env>-manifests-<account>-<region>,
# association pixtools-<env>-node-bootstrap); override with PIXTOOLS_BUNDLE_URI and
# PIXTOOLS_ASSOCIATION_ID (Terraform outputs bootstrap_bundle_uri, node_bootstrap_association_id).
# PIXTOOLS_BOOTSTRAP_TIMEOUT: seconds `run` waits (default 3600).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
REGION=${AWS_REGION:-us-east-1}
BUNDLE_KEY=bootstrap/pixtools-bootstrap.tar.gz
CONTENT=(ansible manifests scripts/deploy)

die() { echo "bundle.sh: $*" >&2; exit 1; }
usage() { sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

check_env() {
    [[ ${1:-} == dev || ${1:-} == prod ]] || die "ENV is dev or prod, not '${1:-}'"
}

build() {
    local out=$1 ref=${2:-HEAD} revision
    revision=$(git -C "$ROOT" rev-parse --verify --quiet "$ref^{commit}") || die "no commit '$ref'"
    if ! git -C "$ROOT" diff --quiet HEAD -- "${CONTENT[@]}" 2>/dev/null; then
        echo "bundle.sh: note: uncommitted changes under ${CONTENT[*]} are not in the bundle" >&2
    fi
    # git archive: files owned by root, in a fixed order, dated by the commit (git >= 2.39).
    git -C "$ROOT" archive --format=tar.gz --add-virtual-file="REVISION:$revision"$'\n' \
        -o "$out" "$revision" "${CONTENT[@]}" || die "git archive of $revision failed"
    echo "bundle $revision -> $out"
}

account() {
    aws sts get-caller-identity --query Account --output text 2>/dev/null ||
        die "no AWS credentials (aws sts get-caller-identity failed): export AWS_PROFILE or run aws sso login"
}

bundle_uri() {
    local env=$1
    if [[ -n ${PIXTOOLS_BUNDLE_URI:-} ]]; then
        echo "$PIXTOOLS_BUNDLE_URI"
    else
        echo "s3://pixtools-$env-manifests-$(account)-$REGION/$BUNDLE_KEY"
    fi
}

upload() {
    local env=$1 ref=${2:-HEAD} uri dir out
    uri=$(bundle_uri "$env")
    dir=$(mktemp -d)
    out=$dir/pixtools-bootstrap.tar.gz
    build "$out" "$ref"
    aws s3 cp --only-show-errors --region "$REGION" "$out" "$uri" ||
        { rm -rf "$dir"; die "upload to $uri failed (has terraform apply for $env run?)"; }
    rm -rf "$dir"
    echo "uploaded $uri"
}

association_id() {
    local env=$1 id
    if [[ -n ${PIXTOOLS_ASSOCIATION_ID:-} ]]; then
        echo "$PIXTOOLS_ASSOCIATION_ID"
        return
    fi
    id=$(aws ssm list-associations --region "$REGION" \
        --association-filter-list "key=AssociationName,value=pixtools-$env-node-bootstrap" \
        --query 'Associations[0].AssociationId' --output text)
    [[ $id != None && -n $id ]] || die "no association pixtools-$env-node-bootstrap (terraform apply for $env first)"
    echo "$id"
}

# newest_execution ID: "<execution id>\t<status>" of the association's latest run (None if none).
newest_execution() {
    aws ssm describe-association-executions --region "$REGION" --association-id "$1" \
        --query 'sort_by(AssociationExecutions, &CreatedTime)[-1].[ExecutionId,Status]' --output text
}

run() {
    local env=$1 ref=${2:-HEAD} id before deadline execution status
    upload "$env" "$ref"
    id=$(association_id "$env")
    before=$(newest_execution "$id" | cut -f1)
    aws ssm start-associations-once --region "$REGION" --association-ids "$id"
    echo "started association $id; waiting for its run on the node (site.yml takes minutes)"
    deadline=$((SECONDS + ${PIXTOOLS_BOOTSTRAP_TIMEOUT:-3600}))
    while ((SECONDS < deadline)); do
        sleep 20
        read -r execution status < <(newest_execution "$id") || continue
        if [[ $execution == "$before" ]]; then
            echo "  waiting for the new run to start"
            continue
        fi
        case $status in
            Success) echo "bootstrap $execution: Success"; return 0 ;;
            Pending | InProgress | None | "") echo "  ${execution:-pending}: ${status:-Pending}" ;;
            *)
                aws ssm describe-association-execution-targets --region "$REGION" \
                    --association-id "$id" --execution-id "$execution" --output table >&2 || true
                die "bootstrap $execution: $status (the node's /var/log/pixtools-bootstrap.log has the run; docs/runbooks.md)"
                ;;
        esac
    done
    die "bootstrap still running after ${PIXTOOLS_BOOTSTRAP_TIMEOUT:-3600} s (association $id)"
}

case ${1:-} in
    build) [[ $# -ge 2 && $# -le 3 ]] || usage; build "$2" "${3:-HEAD}" ;;
    upload) [[ $# -ge 2 && $# -le 3 ]] || usage; check_env "$2"; upload "$2" "${3:-HEAD}" ;;
    run) [[ $# -ge 2 && $# -le 3 ]] || usage; check_env "$2"; run "$2" "${3:-HEAD}" ;;
    *) usage ;;
esac
