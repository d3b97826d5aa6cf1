# The K3s node's role. With IMDSv2 hop limit 2 every pod on the node can use it, so it holds only
# what the node and its workloads need, each statement on exact ARNs:
# SSM agent (managed policy), this environment's parameters and key, the images bucket,
# manifests read, ECR pull, the app log group, and the Load Balancer Controller's
# TargetGroupBinding needs on this environment's target group.

data "aws_iam_policy_document" "node_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  name               = "${local.name}-node"
  description        = "PixTools ${var.environment} K3s node"
  assume_role_policy = data.aws_iam_policy_document.node_assume.json
}

resource "aws_iam_instance_profile" "node" {
  name = "${local.name}-node"
  role = aws_iam_role.node.name
}

resource "aws_iam_role_policy_attachment" "node_ssm_core" {
  role       = aws_iam_role.node.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

data "aws_iam_policy_document" "node" {
  statement {
    sid     = "ReadEnvironmentParameters"
    actions = ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"]
    resources = [
      "arn:${local.partition}:ssm:${local.region}:${local.account_id}:parameter${local.ssm_prefix}",
      "arn:${local.partition}:ssm:${local.region}:${local.account_id}:parameter${local.ssm_prefix}/*",
    ]
  }

  statement {
    sid       = "UseEnvironmentKeyThroughSsmAndS3"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values = [
        "ssm.${local.region}.amazonaws.com",
        "s3.${local.region}.amazonaws.com",
        "sns.${local.region}.amazonaws.com",
      ]
    }
  }

  statement {
    sid       = "ListImagesBucket"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [module.images_bucket.arn]
  }

  statement {
    sid = "ReadWriteImages"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${module.images_bucket.arn}/*"]
  }

  statement {
    sid       = "ReadManifests"
    actions   = ["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"]
    resources = [module.manifests_bucket.arn, "${module.manifests_bucket.arn}/*"]
  }

  statement {
    # GetAuthorizationToken has no resource-level permissions: it only returns a registry login.
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "EcrPull"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = [for repo in data.aws_ecr_repository.app : repo.arn]
  }

  statement {
    sid     = "WriteAppLogs"
    actions = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = [
      aws_cloudwatch_log_group.app.arn,
      "${aws_cloudwatch_log_group.app.arn}:log-stream:*",
    ]
  }

  statement {
    # Describe calls take no resource ARNs; the controller reads targets, instances and network
    # facts to reconcile its TargetGroupBinding.
    sid = "LoadBalancerControllerDescribe"
    actions = [
      "ec2:DescribeAvailabilityZones",
      "ec2:DescribeInstances",
      "ec2:DescribeNetworkInterfaces",
      "ec2:DescribeSecurityGroups",
      "ec2:DescribeSubnets",
      "ec2:DescribeVpcs",
      "elasticloadbalancing:DescribeListeners",
      "elasticloadbalancing:DescribeLoadBalancers",
      "elasticloadbalancing:DescribeTags",
      "elasticloadbalancing:DescribeTargetGroupAttributes",
      "elasticloadbalancing:DescribeTargetGroups",
      "elasticloadbalancing:DescribeTargetHealth",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "LoadBalancerControllerRegistersApiTargets"
    actions   = ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"]
    resources = [aws_lb_target_group.api.arn]
  }

  # Alertmanager (kube-prometheus-stack) sends every alert to the alarm topic; the topic is
  # encrypted with the environment key, hence SNS among the key's ViaService values above.
  statement {
    sid       = "AlertmanagerPublishesAlarms"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]
  }
}

resource "aws_iam_role_policy" "node" {
  name   = "pixtools-node"
  role   = aws_iam_role.node.id
  policy = data.aws_iam_policy_document.node.json
}
