output "state_bucket_name" {
  description = "The remote state bucket; put it in terraform/backend.hcl."
  value       = aws_s3_bucket.state.bucket
}

output "lock_table_name" {
  description = "The DynamoDB table that locks the remote state; put it in terraform/backend.hcl."
  value       = aws_dynamodb_table.locks.name
}

output "ecr_repository_urls" {
  description = "ECR repository URLs by name."
  value       = { for name, repo in aws_ecr_repository.app : name => repo.repository_url }
}

output "github_oidc_provider_arn" {
  description = "The GitHub Actions OIDC identity provider the deploy roles trust."
  value       = aws_iam_openid_connect_provider.github.arn
}
