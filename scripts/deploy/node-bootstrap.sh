#!/bin/bash
# Bootstrap THIS node: run ansible/site.yml on the node itself (connection local).
#
#   node-bootstrap.sh ENV
#
# Runs ON the K3s node, as root, from an unpacked bundle (scripts/deploy/bundle.sh): the SSM
# document of terraform/node_bootstrap.tf calls it on every new instance of the ASG, so a spot
# replacement rejoins the cluster stored in RDS with nobody at a keyboard. Safe to run again
# (site.yml is idempotent); concurrent runs wait for each other.
#
# Environment (for tests and operators):
#   PIXTOOLS_INSTANCE_ID        skip the IMDS lookup of this instance's ID
#   PIXTOOLS_BOOTSTRAP_DRY_RUN  1: write the inventory, print the ansible-playbook command, stop
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

usage() { echo "usage: $0 dev|prod" >&2; exit 2; }
[[ $# -eq 1 ]] || usage
env=$1
[[ $env == dev || $env == prod ]] || usage

bundle=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# The controller's Ansible, pinned like scripts/checks/deploy.sh and the CD workflows: the full
# package brings amazon.aws. ansible-core 2.19 needs Python >= 3.11 on the controller; AL2023's
# system python3 (3.9, with the dnf bindings) still runs the modules.
ansible_version=12.3.0
venv=/opt/pixtools/ansible-$ansible_version
log=/var/log/pixtools-bootstrap.log
marker=/var/lib/pixtools/bootstrapped

instance_id() {
    if [[ -n ${PIXTOOLS_INSTANCE_ID:-} ]]; then
        echo "$PIXTOOLS_INSTANCE_ID"
        return
    fi
    local token
    token=$(curl -sf -m 5 -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 60" \
        http://169.254.169.254/latest/api/token)
    curl -sf -m 5 -H "X-aws-ec2-metadata-token: $token" \
        http://169.254.169.254/latest/meta-data/instance-id
}

id=$(instance_id)
[[ $id =~ ^i-[0-9a-f]+$ ]] || { echo "not an instance ID: $id" >&2; exit 1; }

# The node is a host of the groups site.yml targets (k3s_server:&<env>), named by its instance ID
# like in the aws_ec2 inventory. The file sits in ansible/inventory/ so group_vars/ applies.
inventory=$bundle/ansible/inventory/node.ini
cat >"$inventory" <<INI
# Written by scripts/deploy/node-bootstrap.sh: this node only, reached without SSM.
[k3s_server]
$id

[$env]
$id
INI

command=("$venv/bin/ansible-playbook" -i "$inventory" -e "env=$env" -e ansible_connection=local site.yml)
if [[ ${PIXTOOLS_BOOTSTRAP_DRY_RUN:-} == 1 ]]; then
    printf '%s\n' "${command[@]}"
    exit 0
fi

[[ $(id -u) -eq 0 ]] || { echo "run as root (the SSM document does)" >&2; exit 1; }
mkdir -p /var/lib/pixtools /opt/pixtools
exec 9>/var/lib/pixtools/bootstrap.lock
flock 9

if [[ ! -x $venv/bin/ansible-playbook ]]; then
    echo "installing Ansible $ansible_version into $venv"
    dnf install -y -q python3.11
    python3.11 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "ansible==$ansible_version"
fi

echo "$(date -u +%FT%TZ) bootstrap of $id ($env) from $(cat "$bundle/REVISION" 2>/dev/null || echo unknown)" | tee -a "$log"
cd "$bundle/ansible"
export ANSIBLE_CONFIG=$bundle/ansible/ansible.cfg ANSIBLE_NOCOLOR=1
"${command[@]}" 2>&1 | tee -a "$log"
# site.yml's last role writes the marker the deploy waits for (roles/bootstrap_done).
[[ -f $marker ]] || { echo "site.yml finished without writing $marker" >&2; exit 1; }
echo "$(date -u +%FT%TZ) bootstrap of $id done" | tee -a "$log"
