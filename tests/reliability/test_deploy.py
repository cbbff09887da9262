"""The deployment files agree with the server (CI also lints them: hadolint, kubernetes-validate)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
import yaml

from server import settings_layout
from server.app import create_app
from server.settings import Settings
from tests.reliability.helpers import MODEL, WorkerEngine

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
BASE = K8S / "base"
LAYOUTS = K8S / "layouts"


def manifest(name: str) -> dict:
    return yaml.safe_load((BASE / name).read_text())


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
    assert set(kustomization["resources"]) == {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"] == ["base"]
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


def layout(name: str) -> tuple[dict, dict, dict[str, str], set[str]]:
    """(kustomization, the base Deployment's container with the layout's patch merged, its env by name,
    the names the layout sets)."""
    kustomization = yaml.safe_load((LAYOUTS / name / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["../../base"]
    (patch_ref,) = kustomization["patches"]
    patch = yaml.safe_load((LAYOUTS / name / patch_ref["path"]).read_text())
    assert (patch["kind"], patch["metadata"]["name"]) == ("Deployment", manifest("deployment.yaml")["metadata"]["name"])
    (patched,) = patch["spec"]["template"]["spec"]["containers"]
    (container,) = manifest("deployment.yaml")["spec"]["template"]["spec"]["containers"]
    assert patched["name"] == container["name"]
    # Kustomize's strategic merge: env entries by name, the patch's resources over the base's.
    env = {e["name"]: e.get("value") for e in container["env"]}
    env.update({e["name"]: e["value"] for e in patched["env"]})
    resources = {kind: {**container["resources"][kind], **v} for kind, v in patched["resources"].items()}
    return kustomization, {**container, "resources": resources}, env, {e["name"] for e in patched["env"]}


def known_env_names() -> set[str]:
    flat = {f"TTS_{name.upper()}" for name in Settings.model_fields}
    return flat | {name for field in settings_layout.all_section_fields() for name in field.env_names}


def gpu_index(device: str) -> int | None:
    return int(device.split(":")[1]) if device.startswith("cuda:") else (0 if device == "cuda" else None)


@pytest.mark.parametrize(
    ("name", "kokoro", "lm_gpus", "codec"),
    [("one-gpu", 0, {0}, 0), ("two-gpus", 1, {0}, 1), ("tensor-parallel", 2, {0, 1}, 2)],
)
def test_each_layout_puts_the_models_where_the_readme_says(monkeypatch, name, kokoro, lm_gpus, codec):
    kustomization, container, env, patched = layout(name)
    assert set(env) <= known_env_names(), set(env) - known_env_names()  # no misspelt setting
    for key, value in env.items():
        if value is not None:  # the API keys come from a Secret
            monkeypatch.setenv(key, value)
    settings = Settings()
    assert {m.split("/")[0] for m in settings.models} == {"hexgrad", "canopylabs"}
    orpheus = settings.orpheus
    tensor_parallel = orpheus.tensor_parallel_size if orpheus.backend == "vllm" else 1
    lm = {gpu_index(orpheus.device) + i for i in range(tensor_parallel)}
    assert (gpu_index(settings.kokoro.device), lm, gpu_index(orpheus.codec_device or orpheus.device)) == (
        kokoro,
        lm_gpus,
        codec,
    )
    used = {kokoro, codec} | lm
    gpus = container["resources"]["limits"]["nvidia.com/gpu"]
    assert used == set(range(gpus)) and container["resources"]["requests"]["nvidia.com/gpu"] == gpus
    # vLLM (tensor parallelism) needs the vLLM image; the others run on the default one.
    tags = [image["newTag"] for image in kustomization.get("images", [])]
    assert (tags == ["0.1.0-vllm"]) == (orpheus.backend == "vllm")
    # The README gives the same placement as flags.
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Placing models on GPUs") :]
    section = section[: section.index("\n### ")]
    assert f"`{name}`" in section
    for key, value in env.items():
        if key in patched - {"TTS_MODELS"}:
            assert f"--{key[4:].lower().replace('_', '-')} {value}" in section, key


def test_the_image_takes_its_extras_as_a_build_argument():
    dockerfile = (ROOT / "Dockerfile.gpu").read_text()
    assert re.search(r"^ARG EXTRAS=kokoro,orpheus,cartesia$", dockerfile, re.M)
    assert 'sh deploy/install.sh "$EXTRAS"' in dockerfile
    readme = (ROOT / "README.md").read_text()
    assert "--build-arg EXTRAS=kokoro,orpheus,cartesia,vllm" in readme
    assert re.search(r"^vllm = \[", (ROOT / "pyproject.toml").read_text(), re.M)  # the extra that names exists
