"""The container image recipe (deploy/docker/Dockerfile), linted for its invariants.

No Docker engine runs here, so images are not built in the test suite. What is checked: the
Dockerfile's structure (multi-stage, slim base, non-root, nothing but the venv in the final
stage, installs only from uv.lock), its ignore file, that every SERVICE value names a real
package and console script, and — for real — that the image's install command builds a
standalone, dev-free environment from the lock that can run a service's CLI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from servicekit.testing.plugin import unavailable

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
IGNORE = ROOT / "deploy" / "docker" / "Dockerfile.dockerignore"
SERVICES = ["gateway", "members", "content", "events", "moderation", "metrics"]

BUILD_TOOLS = re.compile(
    r"\b(apt-get|apk|yum|dnf|pip|uv|gcc|g\+\+|cc|make|build-essential|python3-dev|curl|wget)\b"
)


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        current += " " + line.removesuffix("\\").strip()
        if not line.endswith("\\"):
            word, _, rest = current.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            current = ""
    return out


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions(DOCKERFILE.read_text()):
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def test_multi_stage_on_a_slim_python_base() -> None:
    text = DOCKERFILE.read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert base and base.group(1).startswith("python:3.11-slim")
    stages = _stages()
    assert len(stages) >= 2
    assert [s[0][1] for s in stages] == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE} AS runtime"]


def test_final_stage_runs_as_non_root_with_no_build_tools() -> None:
    final = _stages()[-1]
    users = [args for word, args in final if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert int(users[-1].split(":")[0]) >= 10000
    for word, args in final:
        if word == "RUN":
            # Only user creation and removals run in the final stage; no package manager, no
            # compiler is used there (an `rm` of the base image's pip may name it).
            for command in args.split("&&"):
                if not command.strip().startswith("rm "):
                    assert not BUILD_TOOLS.search(command), command
        if word == "COPY":
            assert args.startswith("--from=build"), f"only the built venv is copied: {args}"
    copies = [args for word, args in final if word == "COPY"]
    assert copies == ["--from=build --chown=0:0 /opt/hearth /opt/hearth"]
    # The base image's own installer is removed, so nothing can be pip-installed at run time.
    removals = " ".join(
        c for w, a in final if w == "RUN" for c in a.split("&&") if c.strip().startswith("rm ")
    )
    for path in ("/usr/local/bin/pip", "site-packages/pip", "site-packages/setuptools"):
        assert path in removals, path


def test_installs_reproducibly_from_the_lock() -> None:
    build = _stages()[0]
    copies = [args for word, args in build if word == "COPY"]
    assert "pyproject.toml uv.lock ./" in copies
    syncs = [args for word, args in build if word == "RUN" and "uv sync" in args]
    assert syncs
    for args in syncs:
        for flag in ("--frozen", "--no-dev", '--package "hearth-${SERVICE}"'):
            assert flag in args, (flag, args)
    assert any("--no-editable" in args for args in syncs)
    assert any(re.search(r'"uv==\$\{UV_VERSION\}"', args) for w, args in build if w == "RUN")
    # The Dockerfile copies every workspace member's pyproject (uv needs them to read the lock).
    members = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]
    assert members["members"] == ["servicekit", "gateway", "services/*"]
    for path in ["servicekit", "gateway", *(f"services/{s}" for s in SERVICES[1:])]:
        assert f"{path}/pyproject.toml {path}/" in copies, path


def test_one_process_exec_form_healthcheck_and_port() -> None:
    final = dict((w, a) for w, a in _stages()[-1])
    cmd = json.loads(final["CMD"])
    assert cmd == ["hearth-service", "serve", "--host", "0.0.0.0", "--port", "8080"]
    assert "ENTRYPOINT" not in final  # no shell wrapper: PID 1 is the server and gets SIGTERM
    assert final["EXPOSE"] == "8080"
    assert "/healthz" in final["HEALTHCHECK"]


def test_ignore_file_keeps_state_and_secrets_out() -> None:
    rules = [r for r in IGNORE.read_text().splitlines() if r and not r.startswith("#")]
    assert rules[0] == "**"  # deny by default, then allow only sources and lock
    allowed = [r[1:] for r in rules if r.startswith("!")]
    assert "uv.lock" in allowed
    assert not any(a.startswith(("var", ".venv", ".tools", "tests", "deploy")) for a in allowed)
    # Re-includes name their folders: older BuildKit ignores `!dir/*/file` (moby/moby#30018),
    # which once sent an empty services/ to the build.
    assert not any("*" in a.rsplit("/", 1)[0].replace("/**", "") for a in allowed), allowed
    for svc in SERVICES:
        where = "gateway" if svc == "gateway" else f"services/{svc}"
        assert {f"{where}/pyproject.toml", f"{where}/src/**"} <= set(allowed), svc


def test_every_service_value_is_a_package_with_its_console_script() -> None:
    base = ROOT / "deploy" / "k8s" / "base"
    for svc in SERVICES:
        where = ROOT / ("gateway" if svc == "gateway" else f"services/{svc}") / "pyproject.toml"
        project = tomllib.loads(where.read_text())["project"]
        assert project["name"] == f"hearth-{svc}"
        assert f"hearth-{svc}" in project["scripts"]
        docs = [d for d in yaml.safe_load_all((base / f"{svc}.yaml").read_text()) if d]
        deployment = next(d for d in docs if d["kind"] == "Deployment")
        image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image == f"hearth/{svc}:dev"


def test_the_image_install_step_builds_a_standalone_service(tmp_path: Path) -> None:
    if not (ROOT / ".tools" / "bin" / "uv").exists() and not shutil.which("uv"):
        unavailable("uv is not installed (make install bootstraps it); the checks above ran")
    uv = str(ROOT / ".tools" / "bin" / "uv") if (ROOT / ".tools/bin/uv").exists() else "uv"
    venv = tmp_path / "opt-hearth"
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_PYTHON": sys.executable,
        "UV_LINK_MODE": "copy",
    }
    argv = [uv, "sync", "--frozen", "--no-dev", "--no-editable", "--package", "hearth-members"]
    subprocess.run(argv, cwd=ROOT, env=env, check=True, capture_output=True, timeout=180)
    run = subprocess.run(
        [str(venv / "bin" / "hearth-members"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0 and "serve" in run.stdout
    site = next((venv / "lib").glob("python3*/site-packages"))
    assert (site / "hearth_members" / "migrations" / "versions").is_dir()
    assert not (site / "pytest").exists()  # no dev tools in what ships
    assert not list(site.glob("__editable__*"))  # real packages, not links into the source tree
    print(f"image install step: hearth-members venv built from uv.lock in {venv}")


def test_bake_file_builds_one_image_per_service_from_the_one_recipe() -> None:
    """deploy/docker/docker-bake.hcl: a target per image, each the Dockerfile with its SERVICE."""
    text = (ROOT / "deploy" / "docker" / "docker-bake.hcl").read_text()
    group = re.search(r'group "default" \{\s*targets = \[([^\]]*)\]', text)
    assert group, "no default group"
    assert re.findall(r'"([a-z]+)"', group.group(1)) == SERVICES
    common = re.search(r'target "_common" \{(.*?)\n\}', text, re.S)
    assert common and 'dockerfile = "deploy/docker/Dockerfile"' in common.group(1)
    assert 'context    = "."' in common.group(1)
    defaults = dict(re.findall(r'variable "(\w+)" \{\s*(?:#[^\n]*\n\s*)?default = "([^"]*)"', text))
    base_images = {
        m.group(1)
        for path in (ROOT / "deploy" / "k8s" / "base").glob("*.yaml")
        for m in re.finditer(r"image: (\S+)", path.read_text())
    }
    for service in SERVICES:
        body = re.search(rf'target "{service}" \{{(.*?)\n\}}', text, re.S)
        assert body, service
        assert 'inherits = ["_common"]' in body.group(1)
        assert f'args     = {{ SERVICE = "{service}" }}' in body.group(1)
        tag = re.search(r'tags     = \["([^"]+)"\]', body.group(1))
        assert tag, service
        image = tag.group(1).replace("${REGISTRY}", defaults["REGISTRY"])
        image = image.replace("${TAG}", defaults["TAG"])
        # With the defaults, bake builds exactly the image names the base manifests run.
        assert image == f"hearth/{service}:dev" and image in base_images, image
