terraform {
  # 1.11 is the first release with write-only arguments (password_wo, value_wo): the generated
  # secrets go to RDS and SSM without ever being stored in the state file.
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # Partial configuration: bucket, table and region come from backend.hcl (see backend.hcl.example),
  # the state key from env/<environment>.s3.tfbackend.
  backend "s3" {}
}
