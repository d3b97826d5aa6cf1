terraform {
  # 1.11 is the first release with write-only arguments, which the root module uses for secrets.
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # Local state on purpose: this stack creates the bucket that holds every other state.
  # docs/infrastructure.md says how to keep a copy of it in that bucket.
}
