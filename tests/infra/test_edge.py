"""The public edge: what the ALB must never forward to the api."""

from __future__ import annotations

from typing import Any

from tests.support.terraform import TERRAFORM, Stack


def blocks(value: Any) -> list[dict[str, Any]]:
    """A nested block as a list, however python-hcl2 serialised it."""
    return list(value) if isinstance(value, list) else [value]


def test_metrics_are_not_reachable_through_the_alb() -> None:
    """Prometheus scrapes /metrics in the cluster; from the internet the ALB answers 404."""
    root = Stack(TERRAFORM)
    rules = root.resources.get("aws_lb_listener_rule", {})
    blocking = []
    for rule in rules.values():
        (action,) = blocks(rule["action"])
        paths = [
            value
            for condition in blocks(rule["condition"])
            for pattern in blocks(condition.get("path_pattern", []))
            for value in pattern["values"]
        ]
        if action["type"] == "fixed-response" and "/metrics" in paths:
            (response,) = blocks(action["fixed_response"])
            assert response["status_code"] == "404"
            assert {"/metrics/*", "//*"} <= set(paths)
            assert rule["listener_arn"] == "${aws_lb_listener.http.arn}"
            blocking.append(rule)
    assert len(blocking) == 1, "no listener rule keeps /metrics off the ALB"
    # It is evaluated before the default action (forward to the api target group).
    assert blocking[0]["priority"] == 1
