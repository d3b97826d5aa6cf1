output "id" {
  description = "Bucket name (the id of S3 bucket resources)."
  value       = aws_s3_bucket.this.id
}

output "arn" {
  description = "Bucket ARN."
  value       = aws_s3_bucket.this.arn
}
