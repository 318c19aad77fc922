"""deploy/k8s against the Kubernetes OpenAPI schemas (kubernetes-validate, strict: unknown
fields are errors), plus the wiring the schemas cannot see.

The ServiceMonitor is a Prometheus Operator CRD that kubernetes-validate has no schema for; it
is checked against the small structural schema below (the fields we use, typos rejected) and
against the Service it selects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from kubernetes_validate import utils as kv

from omnistream.config import Settings
from omnistream.journey.loader import load_catalog
from omnistream.ops.kafka_security import KafkaSecurity

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
KUBERNETES_VERSION = "1.35.0"
CRD_KINDS = {"ServiceMonitor", "Kustomization"}

SERVICE_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "endpoints"],
            "properties": {
                "jobLabel": {"type": "string"},
                "namespaceSelector": {"type": "object"},
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matchLabels": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        }
                    },
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["port"],
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string", "pattern": "^/"},
                            "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            "scheme": {"enum": ["http", "https"]},
                            "authorization": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["credentials"],
                                "properties": {
                                    "type": {"type": "string"},
                                    "credentials": {
                                        "type": "object",
                                        "additionalProperties": False,
                                        "required": ["name", "key"],
                                        "properties": {
                                            "name": {"type": "string"},
                                            "key": {"type": "string"},
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def load_all() -> dict[tuple[str, str], dict[str, Any]]:
    docs: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                name = doc.get("metadata", {}).get("name", path.name)
                docs[(doc["kind"], name)] = doc
    return docs


@pytest.fixture(scope="module")
def docs() -> dict[tuple[str, str], dict[str, Any]]:
    return load_all()


def test_builtin_kinds_are_valid_for_kubernetes(docs: dict[tuple[str, str], Any]) -> None:
    validated = []
    for (kind, _name), doc in docs.items():
        if kind not in CRD_KINDS:
            kv.validate(doc, KUBERNETES_VERSION, strict=True)
            validated.append(kind)
    assert sorted(set(validated)) == [
        "ConfigMap", "Job", "NetworkPolicy", "PodDisruptionBudget", "Service", "StatefulSet",
    ]  # fmt: skip


def test_strict_validation_rejects_a_typo(docs: dict[tuple[str, str], Any]) -> None:
    pdb = dict(docs[("PodDisruptionBudget", "omnistream")])
    pdb["spec"] = dict(pdb["spec"], maxUnavalable=1)
    with pytest.raises(kv.ValidationError):
        kv.validate(pdb, KUBERNETES_VERSION, strict=True)


def test_service_monitor_is_well_formed_and_selects_the_metrics_service(
    docs: dict[tuple[str, str], Any],
) -> None:
    monitor = docs[("ServiceMonitor", "omnistream")]
    jsonschema.validate(monitor, SERVICE_MONITOR_SCHEMA)
    selector = monitor["spec"]["selector"]["matchLabels"]
    services = [d for (k, _), d in docs.items() if k == "Service"]
    (selected,) = [s for s in services if selector.items() <= s["metadata"]["labels"].items()]
    assert selected["metadata"]["name"] == "omnistream"  # job="omnistream" for the alerts
    assert selected["spec"]["publishNotReadyAddresses"] is True
    port_names = {p["name"] for p in selected["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= port_names
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "internal"  # /metrics lives on the internal listener ...
    credentials = endpoint["authorization"]["credentials"]  # ... which needs the token
    assert credentials == {"name": "omnistream-internal-tokens", "key": "prometheus"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {**monitor, "spec": {**monitor["spec"], "endpoint": []}}, SERVICE_MONITOR_SCHEMA
        )


def worker(docs: dict[tuple[str, str], Any]) -> dict[str, Any]:
    return docs[("StatefulSet", "omnistream")]


def test_statefulset_probes_volume_and_shutdown(docs: dict[tuple[str, str], Any]) -> None:
    sts = worker(docs)
    config = docs[("ConfigMap", "omnistream-config")]["data"]
    pod = sts["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert str(ports["internal"]) == config["OMNISTREAM_WEB_PORT"]
    assert str(ports["public"]) == config["OMNISTREAM_PUBLIC_PORT"]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        # a probe cannot send the token: the public listener answers it (verdict only)
        assert container[probe]["httpGet"]["port"] == "public", probe
    assert pod["terminationGracePeriodSeconds"] >= 60
    assert pod["securityContext"]["runAsNonRoot"] is True
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == config["OMNISTREAM_DATA_DIR"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]  # one RocksDB volume per pod
    assert mounts["journeys"] == config["OMNISTREAM_JOURNEYS_DIR"]
    assert mounts["kafka-tls"] == str(Path(config["OMNISTREAM_KAFKA_CAFILE"]).parent)
    headless = docs[("Service", sts["spec"]["serviceName"])]
    assert headless["spec"]["clusterIP"] == "None"


def test_selectors_match_the_pods(docs: dict[tuple[str, str], Any]) -> None:
    sts = worker(docs)
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert sts["spec"]["selector"]["matchLabels"].items() <= labels.items()
    pdb = docs[("PodDisruptionBudget", "omnistream")]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1
    for (kind, _), doc in docs.items():
        if kind == "Service":
            assert doc["spec"]["selector"].items() <= labels.items()


def test_secrets_are_referenced_not_shipped(docs: dict[tuple[str, str], Any]) -> None:
    assert not [name for kind, name in docs if kind == "Secret"]
    pod = worker(docs)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]["name"]
        for e in container["env"]
        if "valueFrom" in e
    }
    assert refs == {
        "OMNISTREAM_KAFKA_USERNAME": "omnistream-kafka",
        "OMNISTREAM_KAFKA_PASSWORD": "omnistream-kafka",
        "OMNISTREAM_REDIS_URL": "omnistream-redis",
        "OMNISTREAM_INTERNAL_TOKENS": "omnistream-internal-tokens",
    }
    secret_volumes = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert secret_volumes == {"omnistream-kafka-tls"}


def test_config_is_understood_by_omnistream(
    docs: dict[tuple[str, str], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = docs[("ConfigMap", "omnistream-config")]["data"]
    settings_keys = {f"OMNISTREAM_{name.upper()}" for name in Settings.model_fields}
    security_keys = {f"OMNISTREAM_KAFKA_{name.upper()}" for name in KafkaSecurity.model_fields}
    assert set(config) - settings_keys - security_keys == set(), "unknown OMNISTREAM_* key"
    for key, value in config.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("OMNISTREAM_KAFKA_USERNAME", "from-secret")
    monkeypatch.setenv("OMNISTREAM_KAFKA_PASSWORD", "from-secret")
    settings = Settings()
    assert settings.store == "rocksdb://" and settings.replication_factor == 3
    assert (settings.web_port, settings.public_port, settings.metrics_open) == (6066, 6067, False)
    security = KafkaSecurity()
    assert security.security_protocol == "SASL_SSL"
    assert security.sasl_mechanism == "SCRAM-SHA-512"
    assert security.cafile == Path("/etc/omnistream/kafka-tls/ca.crt")  # from the TLS Secret


def test_each_listener_has_its_own_service_and_the_internal_one_is_fenced(
    docs: dict[tuple[str, str], Any],
) -> None:
    (container,) = worker(docs)["spec"]["template"]["spec"]["containers"]
    container_ports = {p["name"] for p in container["ports"]}
    assert container_ports == {"public", "internal"}
    services = {name: d for (kind, name), d in docs.items() if kind == "Service"}
    targets = {name: {p["targetPort"] for p in s["spec"]["ports"]} for name, s in services.items()}
    assert targets == {"omnistream-public": {"public"}, "omnistream": {"internal"}}

    (policy,) = [d for (kind, _), d in docs.items() if kind == "NetworkPolicy"]
    labels = worker(docs)["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    rules = {p["port"]: rule for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert set(rules) == container_ports
    assert "from" not in rules["public"]  # providers come from anywhere
    peers = rules["internal"]["from"]
    assert peers and all(peer["podSelector"]["matchLabels"] for peer in peers)  # labels only
    assert not any("ipBlock" in peer for peer in peers)
    selected = [peer["podSelector"]["matchLabels"] for peer in peers]
    assert any(s.items() <= labels.items() for s in selected), "workers must reach each other"
    assert {"app.kubernetes.io/name": "prometheus"} in selected


def test_journeys_config_map_loads(docs: dict[tuple[str, str], Any], tmp_path: Path) -> None:
    data = docs[("ConfigMap", "omnistream-journeys")]["data"]
    for filename, content in data.items():
        (tmp_path / filename).write_text(content)
    catalog = load_catalog(tmp_path)
    assert set(catalog.journeys) == {"order_confirmation"}


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present
