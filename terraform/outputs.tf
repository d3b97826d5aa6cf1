output "alb_dns_name" {
  description = "Public hostname of the environment (HTTP, allowlisted CIDRs only)."
  value       = aws_lb.api.dns_name
}

output "api_target_group_arn" {
  description = "Target group the api Service's TargetGroupBinding points at (manifests overlay)."
  value       = aws_lb_target_group.api.arn
}

output "api_node_port" {
  description = "NodePort the api Service must use; the only port the ALB reaches on the node."
  value       = var.api_node_port
}

output "rds_endpoint" {
  description = "RDS PostgreSQL host name (port 5432, TLS required)."
  value       = aws_db_instance.main.address
}

output "ecr_repository_urls" {
  description = "ECR repository URLs by name (created by bootstrap/)."
  value       = { for name, repo in data.aws_ecr_repository.app : name => repo.repository_url }
}

output "ssm_parameter_prefix" {
  description = "Path of this environment's SSM SecureString parameters."
  value       = "${local.ssm_prefix}/"
}

output "images_bucket_name" {
  description = "S3 bucket of source images and outputs (PIXTOOLS_S3_BUCKET)."
  value       = module.images_bucket.id
}

output "manifests_bucket_name" {
  description = "S3 bucket of bootstrap manifests, also the transfer bucket of Ansible's aws_ssm connection (ansible_aws_ssm_bucket_name)."
  value       = module.manifests_bucket.id
}

output "asg_name" {
  description = "Auto Scaling group of the K3s node."
  value       = aws_autoscaling_group.node.name
}

output "node_tags" {
  description = "Tags the Ansible aws_ec2 inventory filters on to find this environment's K3s node."
  value       = { Environment = var.environment, Role = local.node_role_tag }
}

output "deploy_role_arn" {
  description = "Role GitHub Actions assumes through OIDC (aws-actions/configure-aws-credentials role-to-assume)."
  value       = aws_iam_role.deploy.arn
}

output "node_role_arn" {
  description = "IAM role of the K3s node (and, through IMDS, of its pods)."
  value       = aws_iam_role.node.arn
}

output "app_log_group_name" {
  description = "CloudWatch log group the cluster's log shipper writes to."
  value       = aws_cloudwatch_log_group.app.name
}

output "alarm_topic_arn" {
  description = "SNS topic of the alarms and the budget alert."
  value       = aws_sns_topic.alarms.arn
}

output "vpc_id" {
  description = "VPC of the environment."
  value       = aws_vpc.main.id
}

output "bootstrap_bundle_uri" {
  description = "Where scripts/deploy/bundle.sh uploads the playbook bundle every new node bootstraps from."
  value       = local.bootstrap_bundle_uri
}

output "node_bootstrap_association_id" {
  description = "State Manager association that bootstraps each new node (scripts/deploy/bundle.sh run starts it again)."
  value       = aws_ssm_association.node_bootstrap.association_id
}
