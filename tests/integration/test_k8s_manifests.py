"""The Kubernetes manifests in deploy/k8s: every document is valid against the
Kubernetes JSON schemas (strict: unknown fields are errors), offline; and they agree with
each other and with the gateway (labels, ports, probe paths, secrets, the config itself)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from hybridinference.config import parse_config

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
VERSIONS = ("1.30.0", "1.37.0")  # the oldest supported release we target, and the newest


def documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def by_kind(kind: str) -> dict[str, Any]:
    found = [d for d in documents() if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def test_every_required_kind_is_there() -> None:
    kinds = sorted(d["kind"] for d in documents())
    assert kinds == sorted(
        [
            "ConfigMap",
            "Deployment",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "Secret",
            "Service",
        ]
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_is_schema_valid(version: str) -> None:
    for doc in documents():
        kubernetes_validate.validate(doc, version, strict=True)


def test_schema_check_catches_mistakes() -> None:
    broken = by_kind("Deployment")
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pth"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def test_validation_needs_no_network() -> None:
    """The schemas ship inside the package: validate with every socket refused."""
    script = (
        "import socket, sys, yaml, kubernetes_validate\n"
        "def refuse(*a, **k): raise OSError('network disabled in this test')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "socket.getaddrinfo = refuse\n"
        "for path in sys.argv[1:]:\n"
        "    for doc in yaml.safe_load_all(open(path)):\n"
        f"        kubernetes_validate.validate(doc, {VERSIONS[-1]!r}, strict=True)\n"
        "print('ok')\n"
    )
    paths = [str(p) for p in sorted(K8S.glob("*.yaml"))]
    result = subprocess.run(
        [sys.executable, "-c", script, *paths], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def pod_labels() -> dict[str, str]:
    labels: dict[str, str] = by_kind("Deployment")["spec"]["template"]["metadata"]["labels"]
    return labels


def test_selectors_and_targets_agree() -> None:
    deployment = by_kind("Deployment")
    labels = pod_labels()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert by_kind("Service")["spec"]["selector"].items() <= labels.items()
    assert by_kind("PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= (
        labels.items()
    )
    target = by_kind("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    hpa_min = by_kind("HorizontalPodAutoscaler")["spec"]["minReplicas"]
    assert by_kind("PodDisruptionBudget")["spec"]["maxUnavailable"] < hpa_min


def container() -> dict[str, Any]:
    containers = by_kind("Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    spec: dict[str, Any] = containers[0]
    return spec


def gateway_config() -> Any:
    text = by_kind("ConfigMap")["data"]["config.yaml"]
    env = by_kind("Secret")["stringData"]
    return parse_config(yaml.safe_load(text), env, "deploy/k8s/configmap.yaml")


def test_the_configmap_is_a_valid_gateway_config_for_scale_out() -> None:
    config = gateway_config()
    assert config.limits.backend == "redis"  # limits shared by every replica
    assert config.storage.url.startswith("postgresql://")  # one log for every replica
    assert config.limits.redis.url_env in by_kind("Secret")["stringData"]
    ports = {p["name"]: p["containerPort"] for p in container()["ports"]}
    assert ports["http"] == config.server.port
    assert config.server.host == "0.0.0.0"


def test_probes_hit_the_gateway_health_endpoints() -> None:
    from hybridinference.app import create_app

    app = create_app(gateway_config(), by_kind("Secret")["stringData"])
    paths = {getattr(route, "path", None) for route in app.routes}
    spec = container()
    assert spec["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert spec["livenessProbe"]["httpGet"]["path"] == "/health"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert spec[probe]["httpGet"]["path"] in paths
        assert spec[probe]["httpGet"]["port"] == "http"


def test_config_mount_and_secrets_are_wired() -> None:
    spec = container()
    pod = by_kind("Deployment")["spec"]["template"]["spec"]
    config_arg = spec["args"][spec["args"].index("--config") + 1]
    mounts = {m["name"]: m["mountPath"] for m in spec["volumeMounts"]}
    assert config_arg == f"{mounts['config']}/config.yaml"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["config"]["configMap"]["name"] == by_kind("ConfigMap")["metadata"]["name"]
    assert spec["envFrom"][0]["secretRef"]["name"] == by_kind("Secret")["metadata"]["name"]
    assert gateway_config().storage.data_dir == mounts["data"]  # writable journal dir
    assert pod["terminationGracePeriodSeconds"] > 30  # longer than the gateway's drain
