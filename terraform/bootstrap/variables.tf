variable "region" {
  description = "AWS region of the state bucket, the lock table and the ECR repositories (locked: us-east-1)."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = var.region == "us-east-1"
    error_message = "The region is a locked decision of the sprint plan: us-east-1."
  }
}

variable "ecr_repository_names" {
  description = "ECR repositories shared by every environment of the account; images move from dev to prod by digest."
  type        = set(string)
  default     = ["pixtools-api", "pixtools-worker"]

  validation {
    condition     = alltrue([for name in var.ecr_repository_names : can(regex("^pixtools-[a-z0-9-]+$", name))])
    error_message = "ECR repository names start with \"pixtools-\" and use lower-case letters, digits and dashes."
  }
}

variable "ecr_keep_images" {
  description = "How many images each ECR repository keeps; older ones expire. Keep enough for rollbacks to a previous digest."
  type        = number
  default     = 30

  validation {
    condition     = var.ecr_keep_images >= 5 && var.ecr_keep_images <= 1000
    error_message = "Keep between 5 and 1000 images (rollback needs at least the previous few)."
  }
}

variable "state_noncurrent_version_days" {
  description = "Days a superseded state file version is kept in the versioned state bucket before it expires."
  type        = number
  default     = 90

  validation {
    condition     = var.state_noncurrent_version_days >= 30
    error_message = "Keep superseded state versions at least 30 days: they are the undo of a bad apply."
  }
}
