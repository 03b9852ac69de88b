"""The Kubernetes manifests of `deploy/k8s/`: valid against the Kubernetes schemas, and in agreement with the code.

Schemas: `kubernetes-validate` (its bundled JSON schemas, strict: an unknown field
fails) for the oldest Kubernetes release we support and the newest it knows. The
rest checks what no schema can: the flows' StatefulSets run every flow of
`flows.registry` as a cluster whose size, addresses, partitions, volumes and
metrics ports fit together, every variable is a setting the code reads, and the
API's probes are routes it serves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from flows.metrics import metrics_port
from flows.registry import FLOWS, flow_ordinal
from omnistream.settings import Settings
from serving.app import create_app
from tests.harness.kustomize import Resource, render

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
KUBERNETES_VERSIONS = ["1.29.0", "1.37.0"]
VARIABLES = {"OMNISTREAM_" + name.upper() for name in Settings.flat_fields()}


@pytest.fixture(scope="module", params=["base", "overlays/production"])
def rendered(request: pytest.FixtureRequest) -> list[Resource]:
    return render(K8S / request.param)


def one(resources: list[Resource], kind: str, name: str) -> Resource:
    found = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def env_of(resources: list[Resource], container: dict[str, Any]) -> dict[str, str]:
    """The container's variables: its ConfigMaps and Secrets, then its own `env` (which wins, as in Kubernetes)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(one(resources, "ConfigMap", source["configMapRef"]["name"])["data"])
        else:
            env.update(one(resources, "Secret", source["secretRef"]["name"])["stringData"])
    env.update({item["name"]: item["value"] for item in container.get("env", [])})
    return env


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_is_valid_against_the_kubernetes_schemas(rendered: list[Resource], version: str) -> None:
    assert len(rendered) >= 15
    for resource in rendered:
        kubernetes_validate.validate(resource, version, strict=True)


def test_every_flow_runs_as_a_bytewax_cluster_that_fits_together(rendered: list[Resource]) -> None:
    for flow in FLOWS:
        name = f"{flow}-flow"
        sts = one(rendered, "StatefulSet", name)
        service = one(rendered, "Service", sts["spec"]["serviceName"])
        pod = sts["spec"]["template"]
        (container,) = pod["spec"]["containers"]
        env = env_of(rendered, container)
        replicas = sts["spec"]["replicas"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}

        assert container["command"] == ["python", "-m", "flows.run", flow]
        assert sts["spec"]["podManagementPolicy"] == "Parallel"
        assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
        assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
        assert int(env["OMNISTREAM_PROCESSES"]) == replicas
        assert (
            env["OMNISTREAM_CLUSTER_ADDRESS_TEMPLATE"]
            == f"{name}-{{i}}.{service['metadata']['name']}:{ports['bytewax']}"
        )
        assert env["OMNISTREAM_CLUSTER_GENERATION"]
        assert "OMNISTREAM_CLUSTER_PROCESS_ID" not in env  # each pod's ordinal is its id
        assert int(env["OMNISTREAM_RECOVERY_PARTITIONS"]) >= replicas
        assert int(env["OMNISTREAM_TOPIC_PARTITIONS"]) >= replicas * int(env["OMNISTREAM_WORKERS"])
        # Recovery on a volume per pod, mounted where the settings say.
        (claim,) = sts["spec"]["volumeClaimTemplates"]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts[claim["metadata"]["name"]] == env["OMNISTREAM_RECOVERY_DIR"]
        # Scraped where the process serves its metrics (a member serves on process 0's port).
        expected_port = metrics_port(int(env["OMNISTREAM_FLOW_METRICS_PORT"]), flow_ordinal(flow), 0)
        assert ports["metrics"] == expected_port
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(expected_port)
        assert pod["spec"]["securityContext"]["fsGroup"] == 10001  # the image's user writes the volume
        budget = one(rendered, "PodDisruptionBudget", name)
        assert budget["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()


def test_every_variable_is_a_setting_and_the_settings_parse(
    rendered: list[Resource], monkeypatch: pytest.MonkeyPatch
) -> None:
    for resource in rendered:
        for container in [
            c for r in [resource] for c in r.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
        ]:
            env = env_of(rendered, container)
            unknown = sorted(name for name in env if name not in VARIABLES)
            assert not unknown, f"{resource['metadata']['name']}: unknown variables {unknown}"
            for name in VARIABLES:
                monkeypatch.delenv(name, raising=False)
            for name, value in env.items():
                monkeypatch.setenv(name, value)
            Settings()  # raises on a value the code refuses


def test_the_api_is_probed_on_its_routes_and_scaled_by_an_autoscaler(rendered: list[Resource]) -> None:
    deployment = one(rendered, "Deployment", "api")
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    env = env_of(rendered, container)
    routes = set(create_app(Settings()).openapi()["paths"])
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz" in routes
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz" in routes
    (port,) = container["ports"]
    assert port["containerPort"] == int(env["OMNISTREAM_API_PORT"])
    assert env["OMNISTREAM_API_HOST"] == "0.0.0.0"
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port["containerPort"])
    assert "/metrics" in routes
    autoscaler = one(rendered, "HorizontalPodAutoscaler", "api")
    assert autoscaler["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"}
    assert autoscaler["spec"]["minReplicas"] >= 2
    budget = one(rendered, "PodDisruptionBudget", "api")
    assert budget["spec"]["minAvailable"] < autoscaler["spec"]["minReplicas"]  # a drain can always make progress


def test_the_production_overlay_runs_the_inventory_flow_on_four_processes_in_its_namespace() -> None:
    rendered = render(K8S / "overlays" / "production")
    sts = one(rendered, "StatefulSet", "inventory-flow")
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    assert sts["spec"]["replicas"] == 4 == int(env_of(rendered, container)["OMNISTREAM_PROCESSES"])
    assert container["image"] == "registry.example.com/omnistream:1.0.0"
    assert {r["metadata"].get("namespace") for r in rendered if r["kind"] != "Namespace"} == {"omnistream"}
    assert one(rendered, "StatefulSet", "fraud-flow")["spec"]["replicas"] == 2  # untouched by the patch
