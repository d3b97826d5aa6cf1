# dev: merge to main deploys here. Only what differs from the defaults in variables.tf.
environment = "dev"

# Replace with your own public IP as a /32 (curl -s https://checkip.amazonaws.com).
# 203.0.113.0/24 is a documentation range: with it nobody can reach the ALB.
alb_ingress_cidrs = ["203.0.113.10/32"]

# Destroy must leave nothing behind: no RDS deletion protection or final snapshot, buckets emptied.
deletion_protection = false

# WAF off for cost; the allowlist is the edge guard.
enable_waf = false

github_deploy_context = "ref:refs/heads/main"

# Shorter point-in-time window; automated backups stay on.
db_backup_retention_days = 1
