# Terraform owns the environment's one ALB, its HTTP listener and the api target group, so the
# DNS name is known before the cluster exists and destroy removes everything. In the cluster the
# AWS Load Balancer Controller only registers the node with this target group through a
# TargetGroupBinding (targetType: instance) on the api Service, whose nodePort is var.api_node_port.
# HTTP only: v1 has no owned domain, hence no ACM certificate (locked decision).

resource "aws_lb" "api" {
  name                       = local.name
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = [for subnet in aws_subnet.public : subnet.id]
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection
  idle_timeout               = 60

  tags = { Name = local.name }
}

resource "aws_lb_target_group" "api" {
  name                 = "${local.name}-api"
  target_type          = "instance"
  protocol             = "HTTP"
  port                 = var.api_node_port
  vpc_id               = aws_vpc.main.id
  deregistration_delay = 30

  health_check {
    enabled             = true
    path                = "/readyz"
    port                = "traffic-port"
    protocol            = "HTTP"
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  tags = { Name = "${local.name}-api" }
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.api.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }
}

# /metrics is for Prometheus inside the cluster (it scrapes the pod directly, never through the
# ALB): the ALB answers it with 404 before it can reach the target group. A path pattern is
# case-sensitive, as the api's routes are; "//*" keeps a doubled slash from sliding past it.
resource "aws_lb_listener_rule" "metrics_not_public" {
  listener_arn = aws_lb_listener.http.arn
  priority     = 1

  action {
    type = "fixed-response"

    fixed_response {
      content_type = "text/plain"
      message_body = "Not Found"
      status_code  = "404"
    }
  }

  condition {
    path_pattern {
      values = ["/metrics", "/metrics/*", "//*"]
    }
  }
}
