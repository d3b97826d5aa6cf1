variable "name" {
  description = "Globally unique bucket name."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.name))
    error_message = "S3 bucket names are 3-63 lower-case letters, digits, dots and dashes."
  }
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for default encryption (SSE-KMS with a bucket key)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "force_destroy" {
  description = "Let terraform destroy delete a non-empty bucket (dev only)."
  type        = bool
  default     = false
}

variable "expiring_prefixes" {
  description = "Key prefixes whose objects expire after expiration_days (every bucket also aborts incomplete multipart uploads after 1 day)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for prefix in var.expiring_prefixes : length(prefix) > 0])
    error_message = "An expiring prefix must not be empty (that would expire the whole bucket)."
  }
}

variable "expiration_days" {
  description = "Days after which objects under expiring_prefixes are deleted."
  type        = number
  default     = 1

  validation {
    condition     = var.expiration_days >= 1
    error_message = "expiration_days is at least 1."
  }
}
