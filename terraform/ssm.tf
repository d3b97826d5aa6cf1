# Runtime configuration of the environment, one SecureString per value under /pixtools/<env>/,
# encrypted with the environment's key. Ansible copies them into the cluster's runtime Secret on
# the node; the app reads them as PIXTOOLS_<NAME> (docs/infrastructure.md has the mapping).
#
# Generated secrets (database and RabbitMQ passwords, webhook signing secret, K3s token) are
# ephemeral values from the Secrets Manager GetRandomPassword API, written through the
# write-only value_wo: they are never in the state, the repository or user data. Each is
# rewritten only when its var.secret_versions number changes; the K3s token never is (below).

ephemeral "aws_secretsmanager_random_password" "rabbitmq" {
  password_length     = 32
  exclude_punctuation = true
}

ephemeral "aws_secretsmanager_random_password" "webhook_secret" {
  password_length     = 64
  exclude_punctuation = true
}

ephemeral "aws_secretsmanager_random_password" "k3s_token" {
  password_length     = 64
  exclude_punctuation = true
}

locals {
  # Redis and RabbitMQ run in-cluster (locked decision); these are their Service DNS names.
  redis_url         = "redis://redis.pixtools.svc.cluster.local:6379/0"
  rabbitmq_username = "pixtools"

  # Non-secret values: stored normally, so a change in Terraform shows in the plan.
  runtime_parameters = {
    redis_url                 = local.redis_url
    rabbitmq_username         = local.rabbitmq_username
    aws_s3_bucket             = module.images_bucket.id
    webhook_cb_fail_threshold = tostring(var.webhook_cb_fail_threshold)
    webhook_cb_reset_timeout  = tostring(var.webhook_cb_reset_timeout)
  }
}

resource "aws_ssm_parameter" "runtime" {
  for_each = local.runtime_parameters

  name   = "${local.ssm_prefix}/${each.key}"
  type   = "SecureString"
  key_id = aws_kms_key.main.arn
  value  = each.value
}

# The app's SQLAlchemy URL (postgresql+asyncpg). It carries no ssl query parameter on purpose:
# SQLAlchemy passes query parameters to asyncpg.connect() as keywords (which knows "ssl", not
# "sslmode") while the app's LISTEN connection parses the same URL as a libpq DSN (which knows
# "sslmode"; an unknown "ssl" would be sent to the server as a setting). Without it asyncpg
# negotiates TLS itself (sslmode "prefer"), and rds.force_ssl=1 refuses any connection without it.
resource "aws_ssm_parameter" "database_url" {
  name             = "${local.ssm_prefix}/database_url"
  description      = "PIXTOOLS_DATABASE_URL: the app database on RDS (the server enforces TLS)"
  type             = "SecureString"
  key_id           = aws_kms_key.main.arn
  value_wo         = "postgresql+asyncpg://${var.db_username}:${ephemeral.aws_secretsmanager_random_password.database.random_password}@${aws_db_instance.main.address}:${aws_db_instance.main.port}/${var.db_name}"
  value_wo_version = var.secret_versions.database
}

resource "aws_ssm_parameter" "rabbitmq_url" {
  name        = "${local.ssm_prefix}/rabbitmq_url"
  description = "PIXTOOLS_RABBITMQ_URL: the in-cluster RabbitMQ"
  type        = "SecureString"
  key_id      = aws_kms_key.main.arn
  # The password is alphanumeric (no punctuation), so it needs no URL escaping.
  value_wo         = "amqp://${local.rabbitmq_username}:${ephemeral.aws_secretsmanager_random_password.rabbitmq.random_password}@rabbitmq.pixtools.svc.cluster.local:5672/pixtools"
  value_wo_version = var.secret_versions.rabbitmq
}

# The broker's own copy of the password (RABBITMQ_DEFAULT_PASS), from the same generated value
# as rabbitmq_url in the same apply: both rotate together.
resource "aws_ssm_parameter" "rabbitmq_password" {
  name             = "${local.ssm_prefix}/rabbitmq_password"
  description      = "RABBITMQ_DEFAULT_PASS of the in-cluster RabbitMQ"
  type             = "SecureString"
  key_id           = aws_kms_key.main.arn
  value_wo         = ephemeral.aws_secretsmanager_random_password.rabbitmq.random_password
  value_wo_version = var.secret_versions.rabbitmq
}

resource "aws_ssm_parameter" "webhook_secret" {
  name             = "${local.ssm_prefix}/webhook_secret"
  description      = "PIXTOOLS_WEBHOOK_SECRET: HMAC key that signs webhook deliveries"
  type             = "SecureString"
  key_id           = aws_kms_key.main.arn
  value_wo         = ephemeral.aws_secretsmanager_random_password.webhook_secret.random_password
  value_wo_version = var.secret_versions.webhook_secret
}

# The K3s token: generated once, with the cluster. It also encrypts K3s' bootstrap data in the
# k3s_state database, so a new value here would lock every new server out of the cluster
# ("bootstrap data already found and encrypted with different token"). Terraform therefore never
# writes it again (a constant version); ansible/rotate-k3s-token.yml rotates it with
# `k3s token rotate` and then writes the new value here (docs/runbooks.md, "Secret rotation").
resource "aws_ssm_parameter" "k3s_token" {
  name             = "${local.ssm_prefix}/k3s_token"
  description      = "K3s cluster token, read by the bootstrap on the node; rotate with ansible/rotate-k3s-token.yml only"
  type             = "SecureString"
  key_id           = aws_kms_key.main.arn
  value_wo         = ephemeral.aws_secretsmanager_random_password.k3s_token.random_password
  value_wo_version = 1
}
