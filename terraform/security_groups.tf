# Three groups, each admitting only its upstream: allowlisted CIDRs -> ALB -> node (NodePort)
# -> RDS (5432). No SSH anywhere: operators and the deploy use SSM Session Manager.

resource "aws_security_group" "alb" {
  name        = "${local.name}-alb"
  description = "PixTools ALB: HTTP from the allowlisted CIDRs only"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${local.name}-alb" }
}

resource "aws_vpc_security_group_ingress_rule" "alb_http_allowlist" {
  for_each = toset(var.alb_ingress_cidrs)

  security_group_id = aws_security_group.alb.id
  description       = "HTTP from allowlisted ${each.value}"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "alb_to_node" {
  security_group_id            = aws_security_group.alb.id
  description                  = "To the api NodePort on the K3s node"
  ip_protocol                  = "tcp"
  from_port                    = var.api_node_port
  to_port                      = var.api_node_port
  referenced_security_group_id = aws_security_group.node.id
}

resource "aws_security_group" "node" {
  name        = "${local.name}-node"
  description = "PixTools K3s node: the api NodePort from the ALB only"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${local.name}-node" }
}

resource "aws_vpc_security_group_ingress_rule" "node_from_alb" {
  security_group_id            = aws_security_group.node.id
  description                  = "api NodePort from the ALB (target traffic and /readyz health checks)"
  ip_protocol                  = "tcp"
  from_port                    = var.api_node_port
  to_port                      = var.api_node_port
  referenced_security_group_id = aws_security_group.alb.id
}

# Open egress: webhooks go to arbitrary customer endpoints, and image pulls, SSM and package
# mirrors have no fixed addresses. The node is in a private subnet, so this is the NAT path out.
resource "aws_vpc_security_group_egress_rule" "node_all" {
  security_group_id = aws_security_group.node.id
  description       = "Outbound via NAT: SSM, ECR, S3, package mirrors, webhook deliveries"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_security_group" "rds" {
  name        = "${local.name}-rds"
  description = "PixTools RDS: PostgreSQL from the K3s node only"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${local.name}-rds" }
}

resource "aws_vpc_security_group_ingress_rule" "rds_from_node" {
  security_group_id            = aws_security_group.rds.id
  description                  = "PostgreSQL from the K3s node"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.node.id
}
