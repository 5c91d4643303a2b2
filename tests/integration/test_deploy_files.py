"""deploy/ without a Docker engine: the Compose file, the Dockerfile, the Grafana
provisioning and the stack's gateway config are checked for what `docker compose config`
and a linter would catch — and for what the stack needs to work together."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from hybridinference.config import load_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ROOT = DEPLOY.parent
SERVICES = {
    "nginx",
    "gateway",
    "alert-logger",
    "postgres",
    "redis",
    "prometheus",
    "alertmanager",
    "grafana",
}
VARIABLE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::?-[^}]*)?\}")


def compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_compose_has_every_service_wired() -> None:
    data = compose()
    services = data["services"]
    assert set(services) == SERVICES
    volumes = set(data.get("volumes") or {})
    secrets = set(data.get("secrets") or {})
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        image = service.get("image", "")
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin the image tag"
        for dependency in service.get("depends_on") or {}:
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for mount in service.get("volumes") or []:
            source = mount.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source} is missing"
            else:
                assert source in volumes, f"{name}: volume {source} is not declared"
        for secret in service.get("secrets") or []:
            assert secret in secrets
        for port in service.get("ports") or []:
            if name != "nginx":  # only the edge is public
                assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port}"
        assert service.get("restart") == "unless-stopped"
    for name in ("nginx", "gateway", "alert-logger", "postgres", "redis"):
        assert services[name]["healthcheck"]["test"], name
    build = services["gateway"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()
    assert services["nginx"]["depends_on"]["gateway"]["condition"] == "service_healthy"


def test_every_compose_variable_is_documented() -> None:
    text = (DEPLOY / "docker-compose.yml").read_text()
    example = (DEPLOY / ".env.example").read_text()
    documented = {line.split("=", 1)[0] for line in example.splitlines() if "=" in line}
    assert set(VARIABLE.findall(text)) <= documented


def test_nginx_template_variables_are_set_by_compose() -> None:
    template = (DEPLOY / "nginx" / "templates" / "hybridinference.conf.template").read_text()
    wanted = set(re.findall(r"\$\{([A-Z_]+)\}", template))
    given = set(compose()["services"]["nginx"]["environment"])
    assert wanted and wanted <= given


def test_alertmanager_token_file_is_the_compose_secret() -> None:
    am = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    hook = am["receivers"][0]["webhook_configs"][0]
    assert hook["url"] == "http://alert-logger:9095/webhook"
    assert hook["http_config"]["authorization"]["credentials_file"] == "/run/secrets/alert_token"
    assert "alert_token" in compose()["services"]["alertmanager"]["secrets"]


def dockerfile_stages() -> list[list[str]]:
    lines: list[str] = []
    for raw in (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            lines.append(line)
    stages: list[list[str]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            stages.append([])
        assert stages, "instructions before the first FROM"
        stages[-1].append(line)
    return stages


def test_dockerfile_is_multi_stage_non_root_with_healthcheck() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2
    for stage in stages:
        base = stage[0].split()[1]
        assert ":" in base and not base.endswith(":latest"), "pin base images"
        assert re.search(r"\bAS \w+", stage[0], re.I)
    final = stages[-1]
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert any(line.upper().startswith("HEALTHCHECK ") for line in final)
    assert any(line.startswith("COPY --from=") for line in final)
    assert "EXPOSE 8080" in " ".join(final)
    entry = next(line for line in final if line.upper().startswith("ENTRYPOINT"))
    assert json.loads(entry.split(None, 1)[1]) == ["hybridinference"]
    for stage in stages:
        for line in stage:
            assert not re.match(r"ADD\s+https?://", line, re.I), "no remote ADD"
            if "pip install" in line or "pip wheel" in line:
                assert "--no-cache-dir" in line
            if line.upper().startswith("COPY ") and "--from" not in line:
                for source in line.split()[1:-1]:
                    assert (ROOT / source).exists(), f"COPY source {source} is missing"


def test_grafana_provisioning_and_dashboard() -> None:
    datasource = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "hybridinference.yml").read_text()
    )["providers"][0]
    mounts = compose()["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "hybridinference.json").read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 30
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == datasource["uid"]
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"])
        assert panel["targets"] and all(t["expr"] for t in panel["targets"])
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert "model" in variables


def test_stack_gateway_config_is_valid() -> None:
    env = {"POSTGRES_PASSWORD": "secret"}
    config = load_config(DEPLOY / "hybridinference.yaml", env)
    assert config.server.host == "0.0.0.0"
    assert [str(n) for n in config.server.trusted_proxies] == ["172.16.0.0/12"]
    assert config.storage.url.startswith("postgresql://")
    assert config.observability.metrics and not config.observability.tracing.enabled
    assert config.dashboard.alerts_url == "http://alert-logger:9095"
    gateway_env = compose()["services"]["gateway"]["environment"]
    assert config.dashboard.alerts_token_env in gateway_env
