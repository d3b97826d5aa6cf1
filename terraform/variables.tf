variable "environment" {
  description = "Deployment environment; names every resource and the SSM prefix /pixtools/<environment>/."
  type        = string

  validation {
    condition     = contains(["dev", "prod"], var.environment)
    error_message = "The environment is \"dev\" or \"prod\"."
  }
}

variable "region" {
  description = "AWS region (locked decision: us-east-1)."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = var.region == "us-east-1"
    error_message = "The region is a locked decision of the sprint plan: us-east-1."
  }
}

variable "extra_tags" {
  description = "Tags added to every resource, besides Project, Environment and ManagedBy."
  type        = map(string)
  default     = {}
}

# --- network ---------------------------------------------------------------

variable "vpc_cidr" {
  description = "CIDR block of the environment's VPC (locked decision: 10.40.0.0/16)."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && endswith(var.vpc_cidr, "/16")
    error_message = "vpc_cidr must be a valid /16 block (the subnets are /24 slices of it)."
  }
}

variable "availability_zones" {
  description = "The two AZs of the public and private subnets, named explicitly so the set never changes under a plan. Pick zones that offer the spot instance types."
  type        = list(string)
  default     = ["us-east-1a", "us-east-1b"]

  validation {
    condition     = length(var.availability_zones) == 2 && length(distinct(var.availability_zones)) == 2
    error_message = "Exactly two distinct availability zones (2 public + 2 private subnets)."
  }

  validation {
    condition     = alltrue([for az in var.availability_zones : startswith(az, var.region)])
    error_message = "Each availability zone must be in var.region."
  }
}

variable "alb_ingress_cidrs" {
  description = "IPv4 CIDRs allowed to reach the ALB (the allowlist that guards the demo API). Never 0.0.0.0/0; not empty in prod."
  type        = list(string)

  validation {
    condition     = alltrue([for cidr in var.alb_ingress_cidrs : can(cidrhost(cidr, 0)) && can(regex("^[0-9.]+/[0-9]+$", cidr))])
    error_message = "Each allowlist entry must be an IPv4 CIDR such as 203.0.113.10/32."
  }

  validation {
    condition     = alltrue([for cidr in var.alb_ingress_cidrs : !endswith(cidr, "/0")])
    error_message = "The ALB is allowlist-only: a /0 block such as 0.0.0.0/0 is not accepted."
  }

  validation {
    condition     = var.environment != "prod" || length(var.alb_ingress_cidrs) > 0
    error_message = "prod needs at least one allowlisted CIDR."
  }
}

variable "flow_logs_traffic_type" {
  description = "Which VPC flow log records to keep in CloudWatch: REJECT (cheap, shows probes and misrouted traffic), ACCEPT or ALL."
  type        = string
  default     = "REJECT"

  validation {
    condition     = contains(["REJECT", "ACCEPT", "ALL"], var.flow_logs_traffic_type)
    error_message = "flow_logs_traffic_type is REJECT, ACCEPT or ALL."
  }
}

# --- compute ---------------------------------------------------------------

variable "instance_type" {
  description = "Primary spot instance type of the K3s node (locked decision: m7i-flex.large)."
  type        = string
  default     = "m7i-flex.large"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.instance_type))
    error_message = "instance_type must look like an EC2 instance type, e.g. m7i-flex.large."
  }
}

variable "spot_fallback_instance_types" {
  description = "Spot-only fallback instance types, tried when the primary has no spot capacity (locked: c7i-flex.large, m6i.large)."
  type        = list(string)
  default     = ["c7i-flex.large", "m6i.large"]

  validation {
    condition     = length(var.spot_fallback_instance_types) > 0 && alltrue([for t in var.spot_fallback_instance_types : can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", t))])
    error_message = "List at least one fallback instance type, each like c7i-flex.large."
  }
}

variable "api_node_port" {
  description = "NodePort of the api Service on the K3s node: the ALB target group port and the only port the ALB may reach on the node. The manifests pin the same value."
  type        = number
  default     = 30080

  validation {
    condition     = var.api_node_port >= 30000 && var.api_node_port <= 32767
    error_message = "api_node_port must be in the Kubernetes NodePort range 30000-32767."
  }
}

# --- database --------------------------------------------------------------

variable "db_name" {
  description = "Name of the application database (the K3s datastore database k3s_state is created by the Ansible bootstrap)."
  type        = string
  default     = "pixtools"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.db_name)) && var.db_name != "k3s_state"
    error_message = "db_name is a lower-case PostgreSQL identifier, and not k3s_state (reserved for K3s)."
  }
}

variable "db_username" {
  description = "Master user of the RDS instance; the app and K3s connect with it."
  type        = string
  default     = "pixtools"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,15}$", var.db_username)) && !contains(["postgres", "rdsadmin", "admin"], var.db_username)
    error_message = "db_username is a lower-case identifier of at most 16 characters and not a reserved name."
  }
}

variable "db_backup_retention_days" {
  description = "Days of RDS automated backups (point-in-time recovery window)."
  type        = number
  default     = 7

  validation {
    condition     = var.db_backup_retention_days >= 1 && var.db_backup_retention_days <= 35
    error_message = "Automated backups stay on: retention between 1 and 35 days."
  }
}

variable "deletion_protection" {
  description = "Protect stateful resources: RDS deletion protection and a final snapshot, ALB deletion protection, S3 buckets not force-destroyed. On in prod, off in dev so that destroy leaves nothing behind."
  type        = bool
  default     = true
}

variable "secret_versions" {
  description = "Bump a number to generate a new value of that secret on the next apply (rotation; docs/runbooks.md). The values themselves are write-only: never in state, repo or user data. The K3s token is not here: it encrypts the cluster's bootstrap data, so it rotates with `k3s token rotate` (ansible/rotate-k3s-token.yml), never by a new parameter value."
  type = object({
    database       = optional(number, 1)
    rabbitmq       = optional(number, 1)
    webhook_secret = optional(number, 1)
  })
  default = {}

  validation {
    condition     = alltrue([for v in values(var.secret_versions) : v >= 1 && floor(v) == v])
    error_message = "Secret versions are whole numbers from 1 up."
  }
}

# --- application runtime config -------------------------------------------

variable "webhook_cb_fail_threshold" {
  description = "Consecutive webhook delivery failures that open the circuit breaker (PIXTOOLS_WEBHOOK_CB_FAIL_THRESHOLD)."
  type        = number
  default     = 5

  validation {
    condition     = var.webhook_cb_fail_threshold >= 1
    error_message = "webhook_cb_fail_threshold is at least 1."
  }
}

variable "webhook_cb_reset_timeout" {
  description = "Seconds before an open webhook circuit half-opens (PIXTOOLS_WEBHOOK_CB_RESET_TIMEOUT)."
  type        = number
  default     = 60

  validation {
    condition     = var.webhook_cb_reset_timeout >= 1
    error_message = "webhook_cb_reset_timeout is at least 1 second."
  }
}

# --- edge ------------------------------------------------------------------

variable "enable_waf" {
  description = "Attach an AWS WAF web ACL with a per-IP rate-based rule to the ALB (about 6 USD a month plus requests; off in dev for cost)."
  type        = bool
  default     = false
}

variable "waf_rate_limit" {
  description = "Requests per client IP per 5 minutes before WAF blocks that IP (when enable_waf is on)."
  type        = number
  default     = 1000

  validation {
    condition     = var.waf_rate_limit >= 10 && var.waf_rate_limit <= 2000000000
    error_message = "waf_rate_limit is between 10 and 2,000,000,000 (the AWS WAF limits)."
  }
}

# --- CI/CD -----------------------------------------------------------------

variable "github_repository" {
  description = "GitHub repository (owner/name) whose Actions workflows may assume the deploy role."
  type        = string
  default     = "pixtools/pixtools"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository is owner/name, e.g. pixtools/pixtools."
  }
}

variable "github_deploy_context" {
  description = "The part of the GitHub OIDC subject after repo:<owner/name>: that may deploy this environment: \"ref:refs/heads/main\" (dev) or \"environment:prod\" (prod, behind required reviewers)."
  type        = string

  validation {
    condition     = can(regex("^(ref:refs/heads/[A-Za-z0-9._/-]+|environment:[A-Za-z0-9._-]+)$", var.github_deploy_context))
    error_message = "github_deploy_context is \"ref:refs/heads/<branch>\" or \"environment:<name>\", without wildcards."
  }
}

# --- observability and cost -----------------------------------------------

variable "log_retention_days" {
  description = "CloudWatch Logs retention in days (locked decision: 14)."
  type        = number
  default     = 14

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch Logs retention value (1, 3, 5, 7, 14, 30, ... 365)."
  }
}

variable "alarm_email" {
  description = "E-mail address subscribed to the alarm topic (it must confirm the subscription); null for none."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alarm_email))
    error_message = "alarm_email must be an e-mail address or null."
  }
}

variable "alb_5xx_rate_threshold_percent" {
  description = "Alarm when 5xx responses (ALB and targets) exceed this percentage of requests for 5 minutes."
  type        = number
  default     = 5

  validation {
    condition     = var.alb_5xx_rate_threshold_percent > 0 && var.alb_5xx_rate_threshold_percent <= 100
    error_message = "alb_5xx_rate_threshold_percent is a percentage above 0."
  }
}

variable "budget_limit_usd" {
  description = "Monthly AWS Budgets amount in USD for the environment's tagged costs; alerts at 80 % actual and 100 % forecast (an alert, not a cap)."
  type        = number
  default     = 20

  validation {
    condition     = var.budget_limit_usd > 0
    error_message = "budget_limit_usd must be positive."
  }
}
