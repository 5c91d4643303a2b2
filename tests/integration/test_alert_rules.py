"""Prometheus and Alertmanager files under deploy/: promtool checks the rules and the
config and runs the rule unit tests; amtool checks Alertmanager's config; every metric a
rule or a dashboard panel uses is one the gateway really exports."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import GatewayFactory

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "rules" / "hybridinference.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "hybridinference.json"
METRIC = re.compile(r"(?<![:\w])(hybridinference_[a-z_]+)(?![:\w])")  # not recording rules
SUFFIXES = ("_bucket", "_count", "_sum")


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed (scripts/system-packages.txt lists its package)")
        pytest.skip(f"{name} is not installed")
    return path


def run(*args: str) -> str:
    result = subprocess.run(args, capture_output=True, text=True, cwd=DEPLOY, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_promtool_checks_rules_and_config() -> None:
    promtool = tool("promtool")
    assert "SUCCESS" in run(promtool, "check", "rules", str(RULES))
    assert "SUCCESS" in run(promtool, "check", "config", "prometheus/prometheus.yml")


def test_promtool_rule_unit_tests() -> None:
    promtool = tool("promtool")
    assert "SUCCESS" in run(promtool, "test", "rules", "prometheus/tests/hybridinference_test.yml")


def test_rule_unit_tests_fail_when_a_rule_breaks(tmp_path: Path) -> None:
    """The unit tests are not vacuous: raising the error-rate threshold fails them."""
    promtool = tool("promtool")
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    broken = RULES.read_text().replace("ratio_rate5m > 0.05", "ratio_rate5m > 0.5")
    (tmp_path / "rules" / "hybridinference.yml").write_text(broken)
    shutil.copy(DEPLOY / "prometheus" / "tests" / "hybridinference_test.yml", tmp_path / "tests")
    result = subprocess.run(
        [promtool, "test", "rules", "tests/hybridinference_test.yml"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode != 0
    assert "HybridInferenceHighErrorRate" in result.stdout + result.stderr


def test_every_required_alert_exists() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    alerts = {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}
    for name in (
        "HybridInferenceHighErrorRate",
        "HybridInferenceHighLatencyP95",
        "HybridInferenceHighTTFTP95",
        "HybridInferenceCircuitOpen",
        "HybridInferenceProviderDown",
        "HybridInferenceBudgetNearExhaustion",
        "HybridInferenceLogSpillActive",
        "HybridInferenceNoTraffic",
    ):
        assert name in alerts
        assert alerts[name]["labels"]["severity"] in {"warning", "critical"}
        anchor = alerts[name]["annotations"]["runbook_url"].split("#")[1]
        assert anchor in runbook_anchors()


def runbook_anchors() -> set[str]:
    """The anchors a Markdown renderer gives the headings of docs/operations.md."""
    text = (DEPLOY.parent / "docs" / "operations.md").read_text()
    headings = re.findall(r"^#+ (.+)$", text, re.M)
    return {re.sub(r"[^a-z0-9 -]", "", h.lower()).strip().replace(" ", "-") for h in headings}


def test_amtool_checks_alertmanager_config() -> None:
    amtool = tool("amtool")
    assert "SUCCESS" in run(amtool, "check-config", "alertmanager/alertmanager.yml")
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    hooks = [h for r in config["receivers"] for h in r.get("webhook_configs", [])]
    assert any(h["url"].endswith("/webhook") and h["send_resolved"] for h in hooks)


def test_dashboard_queries_parse(tmp_path: Path) -> None:
    """Every panel's PromQL (with the $model variable filled in) is valid PromQL."""
    promtool = tool("promtool")
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"panel_{i}", "expr": e.replace("$model", ".*")}
                    for i, e in enumerate(exprs)
                ],
            }
        ]
    }
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump(rules))
    assert "SUCCESS" in run(promtool, "check", "rules", str(path))


def test_rules_and_panels_use_exported_metrics(make_gateway: GatewayFactory) -> None:
    gateway = make_gateway()
    exported = set(re.findall(r"^# TYPE (\S+)", httpx.get(gateway.url + "/metrics").text, re.M))
    groups = yaml.safe_load(RULES.read_text())["groups"]
    exprs = [r["expr"] for g in groups for r in g["rules"]]
    exprs += [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]
    used = set(METRIC.findall("\n".join(exprs)))
    assert used
    exported = {base_name(n) for n in exported}
    for name in used:
        assert base_name(name) in exported, f"{name} is not exported by the gateway"


def base_name(name: str) -> str:
    for suffix in (*SUFFIXES, "_total"):
        name = name.removesuffix(suffix)
    return name
