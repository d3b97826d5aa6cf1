# The single K3s node: server and workloads on one spot instance (v1 cost profile), replaced by
# the ASG when AWS reclaims it. State that must survive a reclaim lives in RDS and S3.

data "aws_ssm_parameter" "al2023_ami" {
  name = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
}

resource "aws_launch_template" "node" {
  name                   = "${local.name}-k3s"
  description            = "PixTools ${var.environment} K3s node (Amazon Linux 2023 x86_64)"
  image_id               = data.aws_ssm_parameter.al2023_ami.insecure_value
  instance_type          = var.instance_type
  update_default_version = true
  vpc_security_group_ids = [aws_security_group.node.id]
  user_data              = base64encode(templatefile("${path.module}/templates/user_data.sh.tftpl", { environment = var.environment }))

  iam_instance_profile {
    arn = aws_iam_instance_profile.node.arn
  }

  # IMDSv2 only. Hop limit 2 because the app's S3 client runs in pods (the plan's locked "EC2
  # role grants app access to S3") and the pod network is one hop; the AWS Load Balancer
  # Controller and Fluent Bit run on the host network, and NetworkPolicies deny 169.254.169.254
  # to every other platform pod (ansible/roles/imds_guard, docs/cluster.md).
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 2
    instance_metadata_tags      = "enabled"
  }

  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      volume_size           = 40
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  dynamic "tag_specifications" {
    for_each = toset(["instance", "volume", "network-interface"])

    content {
      resource_type = tag_specifications.value
      tags = merge(local.common_tags, {
        Name = local.node_name_tag
        Role = local.node_role_tag
      })
    }
  }
}

resource "aws_autoscaling_group" "node" {
  name                = "${local.name}-k3s"
  min_size            = 1
  max_size            = 1
  desired_capacity    = 1
  vpc_zone_identifier = [for subnet in aws_subnet.private : subnet.id]
  capacity_rebalance  = true
  health_check_type   = "EC2"

  # GroupInServiceInstances feeds the "no in-service instance" alarm; ASG group metrics are free.
  enabled_metrics = ["GroupInServiceInstances", "GroupDesiredCapacity", "GroupPendingInstances"]

  mixed_instances_policy {
    # Spot only: no on-demand base, no on-demand share above it (locked decision).
    instances_distribution {
      on_demand_base_capacity                  = 0
      on_demand_percentage_above_base_capacity = 0
      spot_allocation_strategy                 = "capacity-optimized"
    }

    launch_template {
      launch_template_specification {
        launch_template_id = aws_launch_template.node.id
        version            = aws_launch_template.node.latest_version
      }

      dynamic "override" {
        for_each = concat([var.instance_type], var.spot_fallback_instance_types)

        content {
          instance_type = override.value
        }
      }
    }
  }

  dynamic "tag" {
    for_each = merge(local.common_tags, { Name = local.node_name_tag, Role = local.node_role_tag })

    content {
      key   = tag.key
      value = tag.value
      # The launch template's tag_specifications tag the instance, its volume and its ENI.
      propagate_at_launch = false
    }
  }
}
