"""The deployment files agree with the server (CI also lints them: hadolint, kubernetes-validate)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import yaml

from server.app import create_app
from server.settings import Settings
from tests.reliability.helpers import MODEL, WorkerEngine

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"


def manifest(name: str) -> dict:
    return yaml.safe_load((K8S / name).read_text())


def test_probes_grace_and_user_match_the_server():
    deployment = manifest("deployment.yaml")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["ports"][0]["containerPort"] == Settings().port
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert pod["terminationGracePeriodSeconds"] > float(env["TTS_SHUTDOWN_GRACE_S"]) + 5
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 10001
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1


def test_service_monitor_and_hpa_point_at_what_exists():
    service, monitor, hpa = manifest("service.yaml"), manifest("servicemonitor.yaml"), manifest("hpa.yaml")
    labels = service["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["path"] == "/metrics" and endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    kustomization = manifest("kustomization.yaml")
    assert set(kustomization["resources"]) == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    # The HPA's metric is one the server exports.
    metric = hpa["spec"]["metrics"][0]["pods"]["metric"]["name"]
    engine = WorkerEngine()
    app = create_app(Settings(models=[MODEL], warmup=False), engines={MODEL: engine})
    asyncio.run(engine.load())
    try:
        assert f"\n{metric}{{" in app.state.metrics.render().decode()
    finally:
        asyncio.run(engine.close())


def test_the_image_runs_as_a_user_and_installs_as_ci_does():
    dockerfile = (ROOT / "Dockerfile.gpu").read_text()
    assert "USER 10001" in dockerfile and "sh deploy/install.sh" in dockerfile
    # CI installs the project itself, with the torch pin the image's deploy/install.sh uses.
    ci, install = (ROOT / ".ci" / "run").read_text(), (ROOT / "deploy" / "install.sh").read_text()
    pins = {re.findall(r"'torch==[\d.]+'", text)[0] for text in (ci, install)}
    assert len(pins) == 1, pins
    assert "-e '.[kokoro,orpheus,cartesia,dev]'" in ci and '".[${extras}]"' in install
    assert (ROOT / ".dockerignore").read_text().startswith("#")
