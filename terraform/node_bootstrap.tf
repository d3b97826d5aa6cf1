# Every node of the ASG bootstraps itself, with no human: a State Manager association runs the
# bootstrap document on each instance that carries the node's Name tag as soon as its SSM agent
# registers (the first node, and every spot replacement). The document fetches the playbook
# bundle (ansible/, manifests/, scripts/deploy/; packed and uploaded by scripts/deploy/bundle.sh)
# from the manifests bucket and runs scripts/deploy/node-bootstrap.sh, which runs site.yml on the
# node itself. K3s then rejoins the cluster stored in RDS and the workloads come back.
#
# The association also runs again when it changes: a new document version, a new bundle URI, or a
# new database password (secret_versions.database), whose run rewrites K3s' datastore endpoint
# and the runtime Secret on the running node (docs/runbooks.md, "Secret rotation").

locals {
  bootstrap_bundle_key = "bootstrap/pixtools-bootstrap.tar.gz"
  bootstrap_bundle_uri = "s3://${module.manifests_bucket.id}/${local.bootstrap_bundle_key}"
  # How long a fresh node waits for the bundle (the first apply creates the node before anyone
  # could upload it; scripts/deploy/bundle.sh upload does, then the waiting run goes on).
  bootstrap_wait_minutes = 45
}

resource "aws_ssm_document" "node_bootstrap" {
  name            = "${local.name}-node-bootstrap"
  document_type   = "Command"
  document_format = "YAML"
  target_type     = "/AWS::EC2::Instance"

  content = yamlencode({
    schemaVersion = "2.2"
    description   = "PixTools ${var.environment}: bootstrap this K3s node from the playbook bundle (site.yml, run locally)"
    parameters = {
      BundleUri = {
        type           = "String"
        description    = "S3 URI of the bundle scripts/deploy/bundle.sh uploads"
        allowedPattern = "^s3://[a-z0-9][a-z0-9.-]+/[A-Za-z0-9._/-]+\\.tar\\.gz$"
      }
      Environment = {
        type          = "String"
        description   = "The environment (site.yml -e env=...)"
        allowedValues = ["dev", "prod"]
      }
      WaitMinutes = {
        type           = "String"
        description    = "Minutes to wait for the bundle to appear"
        default        = tostring(local.bootstrap_wait_minutes)
        allowedPattern = "^[0-9]{1,3}$"
      }
      SecretsVersion = {
        type           = "String"
        description    = "The database password version: a new one re-runs the association, which rewrites the datastore endpoint"
        default        = "1"
        allowedPattern = "^[0-9]{1,6}$"
      }
    }
    mainSteps = [{
      action       = "aws:runShellScript"
      name         = "bootstrap"
      precondition = { StringEquals = ["platformType", "Linux"] }
      inputs = {
        timeoutSeconds = "5400"
        runCommand = [
          "#!/bin/bash",
          "set -euo pipefail",
          "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
          "echo 'pixtools node bootstrap: bundle {{ BundleUri }}, database password version {{ SecretsVersion }}'",
          "work=/var/lib/pixtools/bootstrap",
          "mkdir -p -m 0700 \"$work\"",
          "deadline=$((SECONDS + {{ WaitMinutes }} * 60))",
          "until aws s3 cp --only-show-errors --region ${local.region} '{{ BundleUri }}' \"$work/bundle.tar.gz\"; do",
          "  if ((SECONDS >= deadline)); then",
          "    echo 'no bundle at {{ BundleUri }} after {{ WaitMinutes }} min: run scripts/deploy/bundle.sh run {{ Environment }}' >&2",
          "    exit 1",
          "  fi",
          "  echo 'waiting for the bundle (scripts/deploy/bundle.sh upload {{ Environment }})'",
          "  sleep 30",
          "done",
          "rm -rf \"$work/bundle\"",
          "mkdir -m 0700 \"$work/bundle\"",
          "tar -xzf \"$work/bundle.tar.gz\" -C \"$work/bundle\"",
          "exec bash \"$work/bundle/scripts/deploy/node-bootstrap.sh\" '{{ Environment }}'",
        ]
      }
    }]
  })
}

resource "aws_ssm_association" "node_bootstrap" {
  association_name    = "${local.name}-node-bootstrap"
  name                = aws_ssm_document.node_bootstrap.name
  document_version    = aws_ssm_document.node_bootstrap.latest_version
  compliance_severity = "CRITICAL"
  max_concurrency     = "1"
  max_errors          = "1"
  # No schedule: it runs once on each new target and again whenever it changes; a run re-applies
  # everything site.yml owns, so it should not restart things on a timer.
  apply_only_at_cron_interval = false

  # The Name tag only this environment's node carries (compute.tf: the launch template tags the
  # instance). New instances of the ASG match it as they come up.
  targets {
    key    = "tag:Name"
    values = [local.node_name_tag]
  }

  parameters = {
    BundleUri      = local.bootstrap_bundle_uri
    Environment    = var.environment
    WaitMinutes    = tostring(local.bootstrap_wait_minutes)
    SecretsVersion = tostring(var.secret_versions.database)
  }

  # A re-run after a password change must read the new URL and find RDS on the new password.
  depends_on = [aws_ssm_parameter.database_url, aws_db_instance.main, aws_ssm_parameter.k3s_token]
}
