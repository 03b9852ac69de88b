"""The container files agree with each other and with `omnistream.settings.Settings`.

There is no Docker engine to run the stack, so these tests read `docker-compose.yml`,
`deploy/prometheus/prometheus.yml`, the Grafana provisioning of `deploy/grafana`,
`Dockerfile` and `.dockerignore` and check the properties that would otherwise only
show up as a broken `docker compose up`.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import shlex
import tomllib
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from pydantic import ValidationError

from flows.metrics import metrics_port
from flows.registry import FLOWS
from omnistream.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "omnistream.json"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PYPROJECT = ROOT / "pyproject.toml"

ENV_PREFIX = "OMNISTREAM_"
OMNISTREAM_IMAGE = "omnistream:local"
DEPENDS_ON_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


# ---------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), "compose needs a services map"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def prometheus() -> dict[str, Any]:
    data = yaml.safe_load(PROMETHEUS.read_text())
    assert isinstance(data, dict) and data.get("scrape_configs"), "prometheus.yml needs scrape_configs"
    return data


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's `environment`, in either compose syntax, as strings."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in env)
        return {k: v for k, v in pairs}
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    """`depends_on` as {service: condition}; the list form means `service_started`."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command") or []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(part) for part in cmd]


def is_omnistream(service: dict[str, Any]) -> bool:
    return service.get("image") == OMNISTREAM_IMAGE


def container_ports(service: dict[str, Any]) -> set[int]:
    """Container-side ports a service publishes (`ports`) or exposes (`expose`)."""
    found: set[int] = set()
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            found.add(int(entry["target"]))
        else:
            found.add(int(str(entry).split("/")[0].rsplit(":", 1)[-1]))
    for entry in service.get("expose") or []:
        found.add(int(str(entry).split("/")[0]))
    return found


def dockerfile_env() -> dict[str, str]:
    """`ENV key=value` pairs of the Dockerfile (the final stage wins)."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip().upper().startswith("ENV "):
            for token in shlex.split(line.strip()[4:]):
                if "=" in token:
                    key, value = token.split("=", 1)
                    env[key] = value
    return env


def settings_value(service: dict[str, Any], field: str) -> Any:
    """What `Settings.<field>` will be inside the service's container."""
    env = {**dockerfile_env(), **environment(service)}
    name = ENV_PREFIX + field.upper()
    if name in env:
        return Settings(**{field: env[name]}).flat_values()[field]  # type: ignore[arg-type]
    return Settings.flat_fields()[field].default


def listening_ports(service: dict[str, Any]) -> set[int]:
    """Ports the process of a service listens on.

    For Omnistream containers this comes from the settings the command reads (that is
    what the process binds), not from what the compose file claims to expose.
    """
    if not is_omnistream(service):
        return container_ports(service)
    argv = command(service)
    ports: set[int] = set()
    if argv[:2] == ["omnistream", "serve"]:
        ports.add(settings_value(service, "api_port"))
    if argv[:2] == ["omnistream", "flow"] and len(argv) > 2 and argv[2] in FLOWS:
        ordinal = list(FLOWS).index(argv[2])
        base = settings_value(service, "flow_metrics_port")
        processes = settings_value(service, "processes")
        if base:
            ports.update(metrics_port(base, ordinal, index) for index in range(processes))
    return ports


def flow_services(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    """{service name: flow name} of every service running `omnistream flow NAME`."""
    return {
        name: command(service)[2]
        for name, service in services.items()
        if is_omnistream(service) and command(service)[:2] == ["omnistream", "flow"] and len(command(service)) > 2
    }


def host_path(service: dict[str, Any], container_path: str) -> Path | None:
    """The repository path a bind mount of `service` shows at `container_path`, or None."""
    best: tuple[str, str] | None = None
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            source, target = str(volume.get("source", "")), str(volume["target"])
        else:
            source, target = str(volume).split(":")[:2]
        if not source.startswith((".", "/")):
            continue  # a named volume holds no repository file
        target = target.rstrip("/") or "/"
        if (container_path == target or container_path.startswith(target + "/")) and (
            best is None or len(target) > len(best[1])
        ):
            best = (source, target)
    if best is None:
        return None
    source, target = best
    return (ROOT / source / container_path[len(target) :].lstrip("/")).resolve()


def scrape_targets(prometheus: dict[str, Any]) -> Iterator[tuple[str, str, int]]:
    """(job, host, port) of every static target."""
    for job in prometheus["scrape_configs"]:
        for static in job.get("static_configs") or []:
            for target in static.get("targets") or []:
                host, _, port = str(target).rpartition(":")
                assert host and port.isdigit(), f"{job['job_name']}: target {target!r} is not host:port"
                yield job["job_name"], host, int(port)


# ---------------------------------------------------------------- compose structure


def test_compose_has_the_stack(services: dict[str, dict[str, Any]]) -> None:
    expected = {
        "kafka", "redis", "topics", "inventory-flow", "recommend-flow", "fraud-flow", "api", "simulator",
        "prometheus", "grafana",
    }  # fmt: skip
    assert expected <= services.keys(), f"missing services: {sorted(expected - services.keys())}"
    assert services["simulator"].get("profiles") == ["demo"], "the simulator is optional: profile `demo`"
    for name, service in services.items():
        assert "image" in service, f"{name}: every service names its image"


def test_depends_on_names_existing_services_with_sound_conditions(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        for dep, condition in depends_on(service).items():
            assert dep in services, f"{name} depends on unknown service {dep!r}"
            assert dep != name, f"{name} depends on itself"
            assert condition in DEPENDS_ON_CONDITIONS, f"{name} -> {dep}: unknown condition {condition!r}"
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy; it has no healthcheck"
            if condition == "service_completed_successfully":
                restart = str(services[dep].get("restart", "no"))
                assert restart in {"no", "on-failure"}, f"{dep} is awaited to exit but restarts ({restart})"
            if services[dep].get("profiles") and not service.get("profiles"):
                pytest.fail(f"{name} (always on) depends on {dep}, which only runs under a profile")


def test_depends_on_has_no_cycle(services: dict[str, dict[str, Any]]) -> None:
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"depends_on cycle: {' -> '.join((*path, name))}"
        if name in done:
            return
        for dep in depends_on(services[name]):
            if dep in services:
                visit(dep, (*path, name))
        done.add(name)

    for name in services:
        visit(name, ())


def test_named_volumes_are_declared(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    declared = set((compose.get("volumes") or {}).keys())
    for name, service in services.items():
        for volume in service.get("volumes") or []:
            source = volume["source"] if isinstance(volume, dict) else str(volume).split(":", 1)[0]
            if not source.startswith((".", "/", "~")):
                assert source in declared, f"{name}: named volume {source!r} is not declared at top level"


# ---------------------------------------------------------------- kafka and redis


def test_kafka_is_a_single_node_kraft_broker(services: dict[str, dict[str, Any]]) -> None:
    env = environment(services["kafka"])
    assert not any("ZOOKEEPER" in key for key in env), "KRaft mode: no ZooKeeper settings"
    roles = {role.strip() for role in env.get("KAFKA_PROCESS_ROLES", "").split(",")}
    assert roles == {"broker", "controller"}, f"KAFKA_PROCESS_ROLES must be broker,controller; got {roles}"

    node_id = env["KAFKA_NODE_ID"]
    voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
    assert len(voters) == 1 and voters[0].startswith(f"{node_id}@kafka:"), f"bad quorum voters {voters}"
    voter_port = voters[0].rsplit(":", 1)[1]

    listeners = dict(item.split("://", 1) for item in env["KAFKA_LISTENERS"].split(","))
    protocols = dict(item.split(":", 1) for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    advertised = dict(item.split("://", 1) for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]

    assert set(listeners) <= set(protocols), "every listener needs a security protocol"
    assert controller in listeners and listeners[controller].endswith(f":{voter_port}"), (
        "the controller listener must listen on the quorum voter port"
    )
    assert controller not in advertised, "the controller listener is not advertised to clients"
    assert env.get("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT") in advertised
    for name, address in advertised.items():
        assert name in listeners, f"advertised listener {name} is not a listener"
        port = address.rsplit(":", 1)[1]
        assert listeners[name].endswith(f":{port}"), f"{name} advertises port {port} but listens on {listeners[name]}"
    for key in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"):
        assert str(env[key]) == "1", f"{key} must be 1 on a single broker"


def test_kafka_and_redis_have_cli_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    kafka_check = " ".join(map(str, services["kafka"]["healthcheck"]["test"]))
    assert "/opt/kafka/bin/" in kafka_check and "--bootstrap-server" in kafka_check
    redis_check = " ".join(map(str, services["redis"]["healthcheck"]["test"]))
    assert "redis-cli" in redis_check and "ping" in redis_check


def test_omnistream_clients_point_at_compose_services(services: dict[str, dict[str, Any]]) -> None:
    kafka_env = environment(services["kafka"])
    advertised = {address.split("://", 1)[1] for address in kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(",")}
    checked = 0
    for name, service in services.items():
        if not is_omnistream(service):
            continue
        checked += 1
        brokers = settings_value(service, "kafka_brokers").split(",")
        for broker in brokers:
            host = broker.strip().rpartition(":")[0]
            assert host in services, f"{name}: broker host {host!r} is not a compose service"
            assert broker.strip() in advertised, f"{name}: {broker} is not an advertised Kafka listener"
        redis = urlsplit(settings_value(service, "redis_url"))
        assert redis.hostname in services, f"{name}: Redis host {redis.hostname!r} is not a compose service"
        assert (redis.port or 6379) in listening_ports(services[redis.hostname]) | {6379}
    assert checked >= 4 + len(FLOWS) - 1, "topics, every flow, api and simulator all run the Omnistream image"


# ---------------------------------------------------------------- OMNISTREAM_* settings


def _omnistream_variables(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Every OMNISTREAM_* name used by compose or the Dockerfile, with where it appears."""
    used: dict[str, str] = {}
    for name, service in services.items():
        for key in environment(service):
            if key.startswith(ENV_PREFIX):
                used.setdefault(key, f"service {name}")
    for source, text in ((COMPOSE.name, COMPOSE.read_text()), (DOCKERFILE.name, DOCKERFILE.read_text())):
        for match in re.finditer(r"\b(OMNISTREAM_[A-Z0-9_]+)", text):
            used.setdefault(match.group(1), source)
    return used


def test_every_omnistream_variable_is_a_settings_field(services: dict[str, dict[str, Any]]) -> None:
    used = _omnistream_variables(services)
    assert used, "compose sets no OMNISTREAM_* variable at all"
    fields = {ENV_PREFIX + field.upper() for field in Settings.flat_fields()}
    unknown = {name: where for name, where in used.items() if name not in fields}
    assert not unknown, f"not fields of omnistream.settings.Settings: {unknown}"


def test_every_service_environment_is_valid_settings(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)
    for name, service in services.items():
        if not is_omnistream(service):
            continue
        env = {**dockerfile_env(), **environment(service)}
        values = {k[len(ENV_PREFIX) :].lower(): v for k, v in env.items() if k.startswith(ENV_PREFIX)}
        try:
            Settings(**values)  # type: ignore[arg-type]
        except ValidationError as ex:
            pytest.fail(f"{name}: invalid OMNISTREAM_* settings:\n{ex}")


def test_api_listens_on_all_interfaces_and_publishes_its_port(services: dict[str, dict[str, Any]]) -> None:
    api = services["api"]
    assert settings_value(api, "api_host") == "0.0.0.0", "the API must bind 0.0.0.0 inside a container"
    port = settings_value(api, "api_port")
    assert port in container_ports(api), f"the API listens on {port} but publishes {container_ports(api)}"
    check = " ".join(map(str, api["healthcheck"]["test"]))
    assert "urllib" in check, "the slim image has no curl: check /healthz with urllib"
    assert f":{port}/healthz" in check, f"the API healthcheck must call /healthz on port {port}"


def test_omnistream_services_expose_only_ports_they_listen_on(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if is_omnistream(service):
            stray = container_ports(service) - listening_ports(service)
            assert not stray, f"{name} publishes/exposes {sorted(stray)} but its process does not listen there"


def test_flow_recovery_dir_is_a_named_volume(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    declared = set((compose.get("volumes") or {}).keys())
    flows = {n: s for n, s in services.items() if is_omnistream(s) and command(s)[:2] == ["omnistream", "flow"]}
    assert flows, "no service runs `omnistream flow ...`"
    for name, service in flows.items():
        recovery = str(settings_value(service, "recovery_dir"))
        assert recovery.startswith("/"), f"{name}: recovery dir {recovery!r} must be absolute in a container"
        mounts = {}
        for volume in service.get("volumes") or []:
            if isinstance(volume, dict):
                mounts[volume["target"]] = volume["source"]
            else:
                source, target = str(volume).split(":")[:2]
                mounts[target] = source
        assert recovery in mounts, f"{name}: recovery dir {recovery} is not a mount ({mounts})"
        assert mounts[recovery] in declared, f"{name}: recovery must be on a named volume, not {mounts[recovery]}"


def test_every_flow_runs_in_a_compose_service(services: dict[str, dict[str, Any]]) -> None:
    """Each flow of `flows.run.FLOWS` has one always-on service, started once its topics exist."""
    running = flow_services(services)
    for flow in FLOWS:
        names = [name for name, runs in running.items() if runs == flow]
        assert len(names) == 1, f"flow {flow!r} must run in exactly one compose service, found {names}"
        service = services[names[0]]
        assert not service.get("profiles"), f"{names[0]} runs flow {flow} only under a profile"
        deps = depends_on(service)
        assert deps.get("topics") == "service_completed_successfully", (
            f"{names[0]} must wait for the topics service to have created the topics"
        )
        assert deps.get("redis") == "service_healthy", f"{names[0]} must wait for a healthy Redis"
        assert str(service.get("restart")) == "unless-stopped", f"{names[0]}: a flow restarts after a crash"
    unknown = {name: flow for name, flow in running.items() if flow not in FLOWS}
    assert not unknown, f"services run unknown flows: {unknown}"


def test_each_flow_has_a_recovery_volume_of_its_own(services: dict[str, dict[str, Any]]) -> None:
    owners: dict[str, str] = {}
    for name in flow_services(services):
        recovery = str(settings_value(services[name], "recovery_dir"))
        sources = [
            str(volume).split(":")[0]
            for volume in services[name].get("volumes") or []
            if not isinstance(volume, dict) and str(volume).split(":")[1] == recovery
        ]
        assert len(sources) == 1, f"{name}: one volume at {recovery}, found {sources}"
        assert sources[0] not in owners, f"{name} shares recovery volume {sources[0]} with {owners.get(sources[0])}"
        owners[sources[0]] = name


def test_fraud_flow_reads_a_rules_file_the_container_has(services: dict[str, dict[str, Any]]) -> None:
    """The fraud flow stops at start without its rules file: it is in the image or mounted."""
    for name, flow in flow_services(services).items():
        if flow != "fraud":
            continue
        rules = str(settings_value(services[name], "fraud_rules_path"))
        assert rules.startswith("/"), f"{name}: rules path {rules!r} must be absolute in a container"
        mounted = host_path(services[name], rules)
        copied = re.search(rf"^COPY\s+(\S+)\s+{re.escape(rules)}\s*$", DOCKERFILE.read_text(), flags=re.MULTILINE)
        source = mounted or (ROOT / copied.group(1) if copied else None)
        assert source is not None, f"{name}: {rules} is neither copied into the image nor mounted"
        assert source.is_file(), f"{name}: {rules} comes from {source}, which does not exist"


# ---------------------------------------------------------------- prometheus


def test_prometheus_targets_are_compose_services_on_their_ports(
    prometheus: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    targets = list(scrape_targets(prometheus))
    assert targets
    for job, host, port in targets:
        assert host in services, f"{job}: target host {host!r} is not a compose service"
        ports = listening_ports(services[host])
        assert port in ports, f"{job}: {host} listens on {sorted(ports)}, not {port}"
        assert not services[host].get("profiles"), f"{job}: {host} only runs under a profile"


def test_prometheus_scrapes_every_api_and_flow(prometheus: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    scraped = {(host, port) for _, host, port in scrape_targets(prometheus)}
    for name, service in services.items():
        if is_omnistream(service) and command(service)[:2] in (
            ["omnistream", "serve"],
            ["omnistream", "flow"],
        ):
            for port in listening_ports(service):
                assert (name, port) in scraped, f"Prometheus does not scrape {name}:{port}"
    for job in prometheus["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics", f"{job['job_name']}: metrics live at /metrics"


def test_every_flow_metrics_port_is_served_and_scraped(
    prometheus: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    """Each flow process's `metrics_port(base, flow ordinal, process)` is exposed and a scrape target."""
    scraped = {(host, port) for _, host, port in scrape_targets(prometheus)}
    running = {flow: name for name, flow in flow_services(services).items()}
    for ordinal, flow in enumerate(FLOWS):
        assert flow in running, f"no compose service runs flow {flow!r}"
        name = running[flow]
        base = settings_value(services[name], "flow_metrics_port")
        assert base, f"{name}: flow metrics are off (OMNISTREAM_FLOW_METRICS_PORT=0)"
        for index in range(settings_value(services[name], "processes")):
            port = metrics_port(base, ordinal, index)
            assert port in container_ports(services[name]), f"{name} does not expose its metrics port {port}"
            assert (name, port) in scraped, f"Prometheus does not scrape {flow} process {index} at {name}:{port}"


def test_prometheus_target_labels_keep_the_metrics_own_labels(prometheus: dict[str, Any]) -> None:
    """A target label named like a label of the series (`flow`, ...) would rename the series' one to `exported_*`."""
    from prometheus_client import REGISTRY

    import flows.metrics  # noqa: F401  (registers the flows' metrics)

    metric_labels: set[str] = set()
    for name, collector in list(REGISTRY._names_to_collectors.items()):
        if name.startswith("omnistream_"):
            metric_labels.update(getattr(collector, "_labelnames", ()))
    assert "flow" in metric_labels
    for job in prometheus["scrape_configs"]:
        for static in job.get("static_configs") or []:
            clash = set(static.get("labels") or {}) & metric_labels
            assert not clash, f"{job['job_name']}: target labels {sorted(clash)} clash with metric labels"


def test_prometheus_loads_the_alert_rules(prometheus: dict[str, Any]) -> None:
    rule_files = [str(pattern) for pattern in prometheus.get("rule_files") or []]
    loaded = {path.resolve() for pattern in rule_files for path in PROMETHEUS.parent.glob(pattern)}
    alerts = (PROMETHEUS.parent / "alerts.yml").resolve()
    assert alerts.is_file(), "deploy/prometheus/alerts.yml is missing"
    assert alerts in loaded, f"rule_files {rule_files} do not load alerts.yml"
    for pattern in rule_files:
        if not any(ch in pattern for ch in "*?["):
            assert (PROMETHEUS.parent / pattern).is_file(), f"rule file {pattern} does not exist"


def test_prometheus_service_mounts_this_config(services: dict[str, dict[str, Any]]) -> None:
    prom = services["prometheus"]
    config_flags = [arg for arg in command(prom) if arg.startswith("--config.file=")]
    assert len(config_flags) == 1, "prometheus must be started with --config.file"
    config_path = config_flags[0].split("=", 1)[1]
    for volume in prom.get("volumes") or []:
        source, target = str(volume).split(":")[:2]
        if config_path.startswith(target.rstrip("/") + "/"):
            host_file = (ROOT / source / config_path[len(target.rstrip("/")) + 1 :]).resolve()
            assert host_file == PROMETHEUS.resolve(), f"--config.file maps to {host_file}, not {PROMETHEUS}"
            return
    pytest.fail(f"{config_path} is not inside any volume of the prometheus service")


# ---------------------------------------------------------------- grafana


GRAFANA_DEFAULT_PROVISIONING = "/etc/grafana/provisioning"


@pytest.fixture(scope="module")
def grafana(services: dict[str, dict[str, Any]]) -> dict[str, Any]:
    assert "grafana" in services, "compose runs no grafana service"
    return services["grafana"]


def _provisioning_files(grafana: dict[str, Any], kind: str) -> list[Path]:
    """The host files Grafana reads as `kind` (datasources, dashboards) provisioning."""
    root = environment(grafana).get("GF_PATHS_PROVISIONING") or GRAFANA_DEFAULT_PROVISIONING
    folder = host_path(grafana, f"{root}/{kind}")
    assert folder is not None, f"grafana: {root}/{kind} is not mounted from the repository"
    assert folder.is_dir(), f"grafana: {root}/{kind} maps to {folder}, which does not exist"
    files = sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")])
    assert files, f"no {kind} provisioning file in {folder}"
    return files


@pytest.fixture(scope="module")
def datasources(grafana: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in _provisioning_files(grafana, "datasources"):
        doc = yaml.safe_load(path.read_text())
        assert isinstance(doc, dict) and doc.get("apiVersion") == 1, f"{path}: apiVersion 1 expected"
        found += doc.get("datasources") or []
    assert found, "no datasource is provisioned"
    return found


def test_grafana_image_is_pinned_and_waits_for_prometheus(grafana: dict[str, Any]) -> None:
    repository, _, tag = str(grafana["image"]).rpartition(":")
    assert repository == "grafana/grafana", f"grafana image is {grafana['image']}"
    assert re.fullmatch(r"\d+\.\d+\.\d+", tag), f"pin an exact Grafana version, not {tag!r}"
    assert "prometheus" in depends_on(grafana), "grafana starts after prometheus"
    assert container_ports(grafana) == {3000}, "Grafana serves on 3000"


def test_grafana_datasource_is_the_compose_prometheus(
    datasources: list[dict[str, Any]], services: dict[str, dict[str, Any]]
) -> None:
    prometheus_sources = [ds for ds in datasources if ds.get("type") == "prometheus"]
    assert len(prometheus_sources) == 1, f"one Prometheus datasource expected, got {prometheus_sources}"
    source = prometheus_sources[0]
    assert source.get("uid") and source.get("name"), "the datasource needs a stable uid and a name"
    assert source.get("isDefault") is True, "the dashboard's datasource variable starts on the default one"
    url = urlsplit(str(source["url"]))
    assert url.hostname in services, f"datasource host {url.hostname!r} is not a compose service"
    assert url.hostname == "prometheus" and (url.port or 80) in listening_ports(services["prometheus"]), (
        f"datasource URL {source['url']} does not reach the prometheus service"
    )


def test_grafana_dashboard_provider_serves_the_dashboard(grafana: dict[str, Any]) -> None:
    served: set[Path] = set()
    for path in _provisioning_files(grafana, "dashboards"):
        doc = yaml.safe_load(path.read_text())
        assert isinstance(doc, dict) and doc.get("apiVersion") == 1, f"{path}: apiVersion 1 expected"
        for provider in doc.get("providers") or []:
            assert provider.get("type", "file") == "file", f"{path}: only file providers are used"
            folder = str(provider["options"]["path"])
            host = host_path(grafana, folder)
            assert host is not None and host.is_dir(), f"{path}: dashboard path {folder} is not a mounted folder"
            served.update(p.resolve() for p in host.rglob("*.json"))
    assert DASHBOARD.resolve() in served, f"no dashboard provider reads {DASHBOARD.relative_to(ROOT)}"
    home = environment(grafana).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        assert host_path(grafana, home) == DASHBOARD.resolve(), f"home dashboard {home} is not {DASHBOARD.name}"


def _datasource_refs(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        if "datasource" in node:
            yield node["datasource"]
        for value in node.values():
            yield from _datasource_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _datasource_refs(item)


def test_dashboard_datasources_resolve_to_the_provisioned_one(datasources: list[dict[str, Any]]) -> None:
    import json

    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard.get("uid") and dashboard.get("panels"), "the dashboard needs a uid and panels"
    variables = {var["name"]: var for var in (dashboard.get("templating") or {}).get("list", [])}
    by_uid = {str(ds["uid"]): ds for ds in datasources}
    by_name = {str(ds["name"]): ds for ds in datasources}
    refs = list(_datasource_refs(dashboard["panels"]))
    assert refs, "the dashboard's panels name no datasource"
    for ref in refs:
        uid = ref.get("uid") if isinstance(ref, dict) else ref
        kind = ref.get("type") if isinstance(ref, dict) else None
        variable = re.fullmatch(r"\$\{?(\w+)\}?", str(uid))
        if variable:
            var = variables.get(variable.group(1))
            assert var is not None, f"datasource variable {uid} is not defined in the dashboard"
            assert var.get("type") == "datasource", f"variable {var['name']} is not a datasource variable"
            matching = [ds for ds in datasources if ds.get("type") == var.get("query")]
            assert matching, f"no provisioned datasource of type {var.get('query')!r} for {uid}"
        else:
            ds = by_uid.get(str(uid)) or by_name.get(str(uid))
            assert ds is not None, f"datasource {uid!r} is not provisioned (uids {sorted(by_uid)})"
            matching = [ds]
        if kind:
            assert all(ds.get("type") == kind for ds in matching), f"datasource {ref} is not of type {kind}"


# ---------------------------------------------------------------- image


def test_dockerfile_builds_a_non_root_python_311_image() -> None:
    text = DOCKERFILE.read_text()
    bases = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
    assert bases and all(base == "python:3.11-slim" for base in bases), f"bases: {bases}"
    requires = tomllib.loads(PYPROJECT.read_text())["project"]["requires-python"]
    assert "3.11.9" in SpecifierSet(requires), f"python 3.11 does not satisfy requires-python {requires}"
    assert re.search(r"pip install\s+(?:\S+\s+)*\.(?:\s|$)", text), "the image installs the project: pip install ."

    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users, "the image must switch to a non-root user"
    assert users[-1].split(":")[0] not in {"root", "0"}, f"final USER is {users[-1]}"

    cmds = re.findall(r"^CMD\s+(.+)$", text, flags=re.MULTILINE)
    assert cmds and yaml.safe_load(cmds[-1]) == ["omnistream", "--help"], f"CMD is {cmds}"


def test_dockerignore_keeps_what_pip_install_needs() -> None:
    patterns = [
        line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    project = tomllib.loads(PYPROJECT.read_text())
    needed = ["pyproject.toml", project["project"]["readme"]]
    needed += [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    for path in needed:
        for pattern in patterns:
            if not pattern.startswith("!"):
                assert not fnmatch(path, pattern.lstrip("/")), f".dockerignore pattern {pattern!r} drops {path}"
    assert ".venv" in patterns and ".git" in patterns, "keep the virtualenv and git history out of the context"


def test_recovery_dir_in_image_is_created_for_the_user() -> None:
    recovery = dockerfile_env().get("OMNISTREAM_RECOVERY_DIR")
    assert recovery, "the image sets OMNISTREAM_RECOVERY_DIR"
    text = DOCKERFILE.read_text()
    assert f"mkdir -p {recovery}" in text and "chown" in text, (
        "create the recovery dir owned by the runtime user, so a named volume there is writable"
    )


# ---------------------------------------------------------------- CLI


def cli_error(cli: Any, argv: list[str]) -> str | None:
    """Why `argv` (without the program name) does not parse with click command `cli`, or None.

    Resolves subcommands and parses the leaf's options and arguments with `make_context`,
    which validates them without running the command. Duck-typed, because Typer may
    ship its own copy of click.
    """
    ctx = cli.make_context("omnistream", [], resilient_parsing=True)
    cmd, rest, path = cli, list(argv), ["omnistream"]
    while hasattr(cmd, "get_command") and rest and not rest[0].startswith("-"):
        sub = cmd.get_command(ctx, rest[0])
        if sub is None:
            return f"`{' '.join(path)}` has no command {rest[0]!r}"
        path.append(rest.pop(0))
        cmd = sub
        if hasattr(cmd, "get_command"):
            ctx = cmd.make_context(path[-1], [], parent=ctx, resilient_parsing=True)
    if hasattr(cmd, "get_command"):
        return f"`{' '.join(path)}` is a group, not a command"
    try:
        cmd.make_context(path[-1], rest, parent=ctx)
    except Exception as ex:
        message = ex.format_message() if hasattr(ex, "format_message") else repr(ex)
        return f"`{' '.join(path)}` rejects {rest}: {message}"
    return None


def test_cli_error_detects_unknown_commands_and_options() -> None:
    import typer

    app = typer.Typer()
    flow = typer.Typer()
    app.add_typer(flow, name="flow")

    @flow.command()
    def inventory() -> None: ...

    @app.command()
    def simulate(rate: float = typer.Option(100.0, "--rate")) -> None: ...

    cli = typer.main.get_command(app)
    assert cli_error(cli, ["flow", "inventory"]) is None
    assert cli_error(cli, ["simulate", "--rate", "200"]) is None
    assert cli_error(cli, ["flow", "fraud"]) is not None
    assert cli_error(cli, ["flow"]) is not None
    assert cli_error(cli, ["serve"]) is not None
    assert cli_error(cli, ["simulate", "--speed", "200"]) is not None
    assert cli_error(cli, ["simulate", "--rate", "fast"]) is not None


def test_compose_commands_exist_in_the_cli(services: dict[str, dict[str, Any]]) -> None:
    """Every `omnistream ...` command in compose parses with the real CLI."""
    import typer

    cli = typer.main.get_command(importlib.import_module("omnistream.cli").app)
    for name, service in services.items():
        if is_omnistream(service):
            argv = command(service)
            assert argv[:1] == ["omnistream"], f"{name}: command must start with `omnistream`, got {argv}"
            error = cli_error(cli, argv[1:])
            assert error is None, f"{name}: {error}"
