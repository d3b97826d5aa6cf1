"""The alert and recording rules and the routing tree, checked by Prometheus' own tools.

``promtool check rules`` and ``promtool test rules`` run on the rules extracted from the
PrometheusRule; every alert and every recording rule must be exercised by a unit test (the
SLO part is generated here from docs/slo.md's objectives); ``amtool`` checks the routing tree
and routes every alert to the SNS receiver.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.monitoring import promrules

HERE = Path(__file__).parent
OBJECTIVES = {
    "api_availability": 0.995,
    "job_success": 0.99,
    "job_latency": 0.95,
    "webhook_success": 0.99,
}
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
# Production `for:` of every alert, asserted here because the live test shortens some.
FOR = {
    "PixToolsApiDown": "5m",
    "PixToolsWorkersDown": "5m",
    "PixToolsApi5xxRate": "5m",
    "PixToolsJobFailureSpike": "5m",
    "PixToolsTaskErrors": "10m",
    "PixToolsOutboxStalled": "5m",
    "PixToolsQueueBacklog": "10m",
    "PixToolsDeadLetters": "15m",
    "PixToolsBrokerAlarm": "2m",
    "PixToolsReconcileStalled": "5m",
    **{
        f"PixTools{''.join(p.capitalize() for p in s.split('_'))}BudgetBurnFast": "2m"
        for s in OBJECTIVES
    },
    **{
        f"PixTools{''.join(p.capitalize() for p in s.split('_'))}BudgetBurnSlow": "1h"
        for s in OBJECTIVES
    },
}

# Series that make each SLO's bad events exactly half of its events (exact in binary, so
# promtool's exact comparison holds): n good and n bad per step.
SLO_INPUT = {
    "api_availability": [
        'pixtools_http_requests_total{namespace="pixtools", method="POST", route="/api/v1/jobs", status="202"}',
        'pixtools_http_requests_total{namespace="pixtools", method="POST", route="/api/v1/jobs", status="503"}',
    ],
    "job_success": [
        'pixtools_jobs_finished_total{namespace="pixtools", status="succeeded"}',
        'pixtools_jobs_finished_total{namespace="pixtools", status="failed"}',
    ],
    "job_latency": [
        'pixtools_job_duration_seconds_bucket{namespace="pixtools", status="succeeded", le="30.0"}',
    ],
    "webhook_success": [
        'pixtools_webhook_deliveries_total{namespace="pixtools", outcome="delivered"}',
        'pixtools_webhook_deliveries_total{namespace="pixtools", outcome="failed"}',
    ],
}


def alert_name(slo: str, speed: str) -> str:
    return f"PixTools{''.join(p.capitalize() for p in slo.split('_'))}BudgetBurn{speed}"


def slo_tests() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """promtool tests of every SLO recording rule and burn-rate alert: (alert tests at a
    1-minute evaluation interval, window tests at 1 hour: three days of 1-minute rule
    evaluations over 3-day windows would take minutes)."""
    tests = []
    ratios = []
    for slo, objective in OBJECTIVES.items():
        series = [{"series": s, "values": "0+3x1000"} for s in SLO_INPUT[slo]]
        if slo == "job_latency":  # count = 2n, bucket le=30 = n: half the jobs over 30 s
            series.append(
                {
                    "series": 'pixtools_job_duration_seconds_count{namespace="pixtools", status="succeeded"}',
                    "values": "0+6x1000",
                }
            )
        budget = 1 - objective
        annotations = {
            "runbook": "docs/runbooks.md#incident-response",
            "dashboard": "PixTools / SLOs",
        }
        exprs: list[dict[str, Any]] = [
            {
                "expr": f'pixtools:slo_errors:ratio_rate{w}{{slo="{slo}"}}',
                "eval_time": "3960m",
                "exp_samples": [
                    {"labels": f'pixtools:slo_errors:ratio_rate{w}{{slo="{slo}"}}', "value": 0.5}
                ],
            }
            for w in WINDOWS
        ]
        exprs.append(
            {
                "expr": f'pixtools:slo_objective:ratio{{slo="{slo}"}}',
                "eval_time": "3960m",
                "exp_samples": [
                    {"labels": f'pixtools:slo_objective:ratio{{slo="{slo}"}}', "value": objective}
                ],
            }
        )
        exprs.append(
            {
                "expr": f'pixtools:slo_budget_remaining:ratio{{slo="{slo}"}}',
                "eval_time": "3960m",
                "exp_samples": [
                    {
                        "labels": f'pixtools:slo_budget_remaining:ratio{{slo="{slo}"}}',
                        # The same float operations, in the same order, as the rule.
                        "value": 1 - (0.5 / (1 - objective)) * (3 / 30),
                    }
                ],
            }
        )
        summary_fast = summary_slow = None
        for rule in promrules.rules():
            if rule.get("alert") == alert_name(slo, "Fast"):
                summary_fast = rule["annotations"]["summary"]
            if rule.get("alert") == alert_name(slo, "Slow"):
                summary_slow = rule["annotations"]["summary"]
        ratios.append(
            {
                "name": f"SLO {slo}: error ratios of every window, objective, budget left",
                "interval": "5m",
                "input_series": series,
                "promql_expr_test": exprs,
            }
        )
        tests.append(
            {
                "name": f"SLO {slo}: both burn-rate alerts",
                "interval": "5m",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": "5m", "alertname": alert_name(slo, "Fast"), "exp_alerts": []},
                    {
                        "eval_time": "15m",
                        "alertname": alert_name(slo, "Fast"),
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "critical", "slo": slo},
                                "exp_annotations": {"summary": summary_fast, **annotations},
                            }
                        ],
                    },
                    {"eval_time": "30m", "alertname": alert_name(slo, "Slow"), "exp_alerts": []},
                    {
                        "eval_time": "90m",
                        "alertname": alert_name(slo, "Slow"),
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "warning", "slo": slo},
                                "exp_annotations": {"summary": summary_slow, **annotations},
                            }
                        ],
                    },
                ],
            }
        )
        assert budget > 0
    # Within budget: no burn alert (job_success at 0.1 % errors against a 1 % budget).
    ratios.append(
        {
            "name": "SLO within budget does not alert",
            "interval": "5m",
            "input_series": [
                {"series": SLO_INPUT["job_success"][0], "values": "0+999x400"},
                {"series": SLO_INPUT["job_success"][1], "values": "0+1x400"},
            ],
            "alert_rule_test": [
                {
                    "eval_time": "1500m",
                    "alertname": alert_name("job_success", speed),
                    "exp_alerts": [],
                }
                for speed in ("Fast", "Slow")
            ],
        }
    )
    return tests, ratios


DASHBOARD_RECORDS = {
    "pixtools:http_requests:rate5m",
    "pixtools:jobs_finished:rate5m",
    "pixtools:job_duration_seconds:p95_5m",
    "pixtools:worker_messages:rate5m",
}


def recording_tests() -> dict[str, Any]:
    """The dashboard recording rules, on known input."""
    return {
        "name": "dashboard recording rules",
        "interval": "1m",
        "input_series": [
            {
                "series": 'pixtools_http_requests_total{namespace="pixtools", pod="a", method="GET", route="/api/v1/jobs/{job_id:uuid}", status="200"}',
                "values": "0+60x20",
            },
            {
                "series": 'pixtools_jobs_finished_total{namespace="pixtools", pod="w", status="succeeded"}',
                "values": "0+120x20",
            },
            {
                "series": 'pixtools_job_duration_seconds_bucket{namespace="pixtools", pod="w", status="succeeded", le="1.0"}',
                "values": "0+0x20",
            },
            {
                "series": 'pixtools_job_duration_seconds_bucket{namespace="pixtools", pod="w", status="succeeded", le="2.0"}',
                "values": "0+60x20",
            },
            {
                "series": 'pixtools_job_duration_seconds_bucket{namespace="pixtools", pod="w", status="succeeded", le="+Inf"}',
                "values": "0+60x20",
            },
            {
                "series": 'pixtools_worker_messages_total{namespace="pixtools", pod="w", queue="standard", actor="process_output", outcome="succeeded"}',
                "values": "0+30x20",
            },
        ],
        "promql_expr_test": [
            {
                "expr": "pixtools:http_requests:rate5m",
                "eval_time": "10m",
                "exp_samples": [
                    {
                        "labels": 'pixtools:http_requests:rate5m{route="/api/v1/jobs/{job_id:uuid}", status="200"}',
                        "value": 1,
                    }
                ],
            },
            {
                "expr": "pixtools:jobs_finished:rate5m",
                "eval_time": "10m",
                "exp_samples": [
                    {"labels": 'pixtools:jobs_finished:rate5m{status="succeeded"}', "value": 2}
                ],
            },
            {
                # Every job between 1 and 2 s: the 95th percentile interpolates to 1.95 s.
                "expr": "pixtools:job_duration_seconds:p95_5m",
                "eval_time": "10m",
                "exp_samples": [{"labels": "pixtools:job_duration_seconds:p95_5m", "value": 1.95}],
            },
            {
                "expr": "pixtools:worker_messages:rate5m",
                "eval_time": "10m",
                "exp_samples": [
                    {
                        "labels": 'pixtools:worker_messages:rate5m{queue="standard", actor="process_output", outcome="succeeded"}',
                        "value": 0.5,
                    }
                ],
            },
        ],
    }


@pytest.fixture(scope="module")
def rule_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return promrules.write_rules(tmp_path_factory.mktemp("rules") / "pixtools.rules.yml")


def test_promtool_checks_the_rules(rule_file: Path) -> None:
    out = subprocess.run(
        ["promtool", "check", "rules", str(rule_file)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(promrules.rules())} rules found" in out.stdout


def test_promtool_unit_tests_cover_every_rule_and_pass(rule_file: Path, tmp_path: Path) -> None:
    hand = yaml.safe_load((HERE / "alerts.test.yaml").read_text())
    slo_alerts, slo_ratios = slo_tests()
    suites = {
        "1m": hand["tests"] + slo_alerts + [recording_tests()],
        "1h": slo_ratios,
    }
    tests = [t for suite in suites.values() for t in suite]
    tested_alerts = {a["alertname"] for t in tests for a in t.get("alert_rule_test", [])}
    tested_exprs = " ".join(e["expr"] for t in tests for e in t.get("promql_expr_test", []))
    for rule in promrules.rules():
        if "alert" in rule:
            assert rule["alert"] in tested_alerts, f"no promtool test fires {rule['alert']}"
        else:
            assert re.search(re.escape(rule["record"]) + r"\b", tested_exprs), rule["record"]
    fired = {a["alertname"] for t in tests for a in t.get("alert_rule_test", []) if a["exp_alerts"]}
    assert fired == {r["alert"] for r in promrules.rules() if "alert" in r}, (
        "every alert fires once"
    )
    for interval, suite in suites.items():
        path = tmp_path / f"suite-{interval}.test.yml"
        path.write_text(
            yaml.safe_dump(
                {"rule_files": [str(rule_file)], "evaluation_interval": interval, "tests": suite},
                sort_keys=False,
            )
        )
        out = subprocess.run(
            ["promtool", "test", "rules", str(path)], capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-6000:]


def test_production_for_durations() -> None:
    # The live test shortens `for:` in its copy; these are the values that ship.
    assert {r["alert"]: r.get("for") for r in promrules.rules() if "alert" in r} == FOR


def test_every_alert_has_severity_runbook_and_dashboard() -> None:
    text = (promrules.ROOT / "docs" / "runbooks.md").read_text()
    # GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens.
    anchors = {
        re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-")
        for h in re.findall(r"^## (.+)$", text, re.M)
    }
    for rule in promrules.rules():
        if "alert" not in rule:
            continue
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        anchor = rule["annotations"]["runbook"].split("#", 1)[1]
        assert anchor in anchors, (rule["alert"], anchor)
        assert rule["annotations"]["dashboard"] in ("PixTools / Operations", "PixTools / SLOs")


def test_alertmanager_config_is_valid_and_routes_every_alert_to_sns(tmp_path: Path) -> None:
    config = promrules.alertmanager_config()
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    out = subprocess.run(
        ["amtool", "check-config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
    sns = next(r for r in config["receivers"] if r["name"] == "sns")["sns_configs"][0]
    assert sns["topic_arn"] == promrules.TOPIC and sns["sigv4"]["region"] == "us-east-1"
    assert sns["send_resolved"] is True
    assert config["route"]["receiver"] == "sns"
    for rule in promrules.rules():
        if "alert" not in rule:
            continue
        labels = [
            f"alertname={rule['alert']}",
            f"severity={rule['labels']['severity']}",
            "namespace=pixtools",
        ]
        routed = subprocess.run(
            ["amtool", "config", "routes", "test", "--config.file", str(path), *labels],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert routed.stdout.strip() == "sns", (rule["alert"], routed.stdout, routed.stderr)
    # Only kube-prometheus-stack's heartbeat is kept from the topic.
    heartbeat = subprocess.run(
        ["amtool", "config", "routes", "test", "--config.file", str(path), "alertname=Watchdog"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert heartbeat.stdout.strip() == "null"
    # The timings that ship (the live test shortens its copy's).
    assert (config["route"]["group_wait"], config["route"]["group_interval"]) == ("30s", "5m")


def test_the_chart_values_carry_the_routing_tree_and_the_node_may_publish() -> None:
    role = promrules.ROOT / "ansible" / "roles" / "monitoring"
    chart = (role / "templates" / "helmchart.yaml.j2").read_text()
    assert "lookup('ansible.builtin.template', 'alertmanager.yaml.j2') | indent(8)" in chart
    assert "PIXTOOLS_ALARM_TOPIC_ARN" in (role / "defaults" / "main.yml").read_text()
    iam = (promrules.ROOT / "terraform" / "iam_node.tf").read_text()
    statement = re.search(r'sid\s+= "AlertmanagerPublishesAlarms"(.*?)\n  }', iam, re.S)
    assert statement is not None
    assert 'actions   = ["sns:Publish"]' in statement.group(1)
    assert "resources = [aws_sns_topic.alarms.arn]" in statement.group(1)
    assert '"sns.${local.region}.amazonaws.com"' in iam  # the topic's KMS key, through SNS
