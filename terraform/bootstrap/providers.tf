provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project   = "pixtools"
      Stack     = "bootstrap"
      ManagedBy = "terraform"
    }
  }
}
