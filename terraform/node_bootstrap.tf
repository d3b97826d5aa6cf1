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

  content = templatefile("${path.module}/templates/node-bootstrap-document.yaml.tftpl", {
    environment  = var.environment
    region       = local.region
    wait_minutes = local.bootstrap_wait_minutes
    # The monitoring role routes Alertmanager to this topic (PIXTOOLS_ALARM_TOPIC_ARN).
    alarm_topic_arn = aws_sns_topic.alarms.arn
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
