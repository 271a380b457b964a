"""Deployment files are loaded and checked so they cannot rot silently.

Docker cannot run on the CI machine, so the images are checked as text; the
Kubernetes and compose manifests are parsed and their important fields
(images, commands, schedule, resources, configuration) are validated against
the project's own CLI and configuration schema.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.cli import main
from pipeline.config import Settings

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
COMPOSE = ROOT / "deploy" / "compose" / "docker-compose.yml"
RUNTIME_IMAGE = "ghcr.io/smdown/smdown-runtime"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _all_k8s() -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in _docs(path):
            if doc["kind"] == "Kustomization":
                continue
            out[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return out


def _pod_specs(doc: dict[str, Any]) -> list[dict[str, Any]]:
    kind = doc["kind"]
    if kind == "CronJob":
        return [doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]]
    if kind == "Job":
        return [doc["spec"]["template"]["spec"]]
    if kind == "DaskCluster":
        return [doc["spec"]["worker"]["spec"], doc["spec"]["scheduler"]["spec"]]
    return []


def _help(subcommand: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main([subcommand, "--help"]) == 0, subcommand
    return capsys.readouterr().out


def _smdown_invocations(text: str) -> list[list[str]]:
    """Every `smdown <sub> --opt ...` command line inside a shell string or argv."""
    out = []
    for part in re.split(r"&&|;|\n", text):
        words = shlex.split(part.replace(">-", ""))
        if "smdown" in words:
            out.append(words[words.index("smdown") + 1 :])
    return out


def test_every_manifest_parses_and_is_named() -> None:
    docs = _all_k8s()
    kinds = {k.split("/")[0] for k in docs}
    assert {"Namespace", "ConfigMap", "Secret", "DaskCluster", "CronJob", "Job"} <= kinds
    for key, doc in docs.items():
        assert doc.get("apiVersion"), key
        assert doc["metadata"]["namespace" if doc["kind"] != "Namespace" else "name"], key


def test_kustomization_lists_existing_files() -> None:
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for res in kust["resources"]:
        assert (K8S / res).is_file(), res
    assert "secret.example.yaml" not in kust["resources"], "never apply the example secret"


def test_cronjob_schedule_and_policy() -> None:
    cron = _all_k8s()["CronJob/smdown-daily"]
    spec = cron["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    fields = spec["schedule"].split()
    assert len(fields) == 5, spec["schedule"]
    minute, hour = int(fields[0]), int(fields[1])
    assert 0 <= minute < 60 and 0 <= hour < 24
    job = spec["jobTemplate"]["spec"]
    assert 0 < job["activeDeadlineSeconds"] <= 4 * 3600
    assert job["backoffLimit"] >= 1


def test_containers_use_runtime_image_with_resources_and_non_root() -> None:
    for key, doc in _all_k8s().items():
        for pod in _pod_specs(doc):
            assert pod["securityContext"]["runAsNonRoot"] is True, key
            for c in pod["containers"]:
                assert c["image"].startswith(RUNTIME_IMAGE + ":"), key
                assert not c["image"].endswith(":latest"), key
                req = c["resources"]["requests"]
                assert "cpu" in req and "memory" in req, key
                assert "limits" in c["resources"], key


def test_dask_workers_are_single_threaded() -> None:
    cluster = _all_k8s()["DaskCluster/smdown"]
    cmd = cluster["spec"]["worker"]["spec"]["containers"][0]["command"]
    assert cmd[:2] == ["dask", "worker"]
    assert cmd[cmd.index("--nthreads") + 1] == "1"


def test_configmap_is_a_valid_smdown_configuration() -> None:
    cm = _all_k8s()["ConfigMap/smdown-config"]
    data = tomllib.loads(cm["data"]["smdown.toml"])
    settings = Settings(**data)
    assert settings.grid.name == "conus-90m"
    assert settings.grid.region is None  # the whole grid in production
    assert settings.output.store.startswith("s3://")
    assert settings.cluster.address and "smdown-scheduler" in settings.cluster.address


def test_compose_configuration_is_valid() -> None:
    data = tomllib.loads((ROOT / "deploy" / "compose" / "smdown.toml").read_text())
    Settings(**data)


def test_secret_keys_cover_what_pods_reference() -> None:
    docs = _all_k8s()
    secret = docs["Secret/smdown-credentials"]
    assert {"EARTHDATA_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(
        secret["stringData"]
    )
    for key, doc in docs.items():
        for pod in _pod_specs(doc):
            for c in pod["containers"]:
                for ref in c.get("envFrom", []):
                    assert ref["secretRef"]["name"] == "smdown-credentials", key


def _all_command_lines() -> list[list[str]]:
    lines: list[list[str]] = []
    for doc in _all_k8s().values():
        for pod in _pod_specs(doc):
            for c in pod["containers"]:
                text = " ".join(shlex.quote(w) for w in c.get("command", []))
                text += "\n" + "\n".join(c.get("args", []))
                lines += _smdown_invocations(text)
    compose = yaml.safe_load(COMPOSE.read_text())
    for svc in compose["services"].values():
        if "command" in svc:
            lines.append(list(svc["command"]))
    return lines


def test_manifest_commands_use_real_cli_options(capsys: pytest.CaptureFixture[str]) -> None:
    lines = _all_command_lines()
    subs = {words[0] for words in lines}
    assert {"run", "backfill"} <= subs
    for words in lines:
        help_text = _help(words[0], capsys)
        for w in words[1:]:
            if w.startswith("--"):
                assert w in help_text, f"smdown {words[0]} has no option {w}"


def test_compose_services() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    svcs = compose["services"]
    assert {"scheduler", "worker", "daily"} <= set(svcs)
    assert svcs["worker"]["entrypoint"][:3] == ["dask", "worker", "tcp://scheduler:8786"]
    assert svcs["daily"]["command"][:3] == ["run", "--date", "latest"]


@pytest.mark.parametrize(
    ("dockerfile", "needs_train"), [("Dockerfile.runtime", False), ("Dockerfile.train", True)]
)
def test_images_pinned_from_lock_and_non_root(dockerfile: str, needs_train: bool) -> None:
    text = (ROOT / "deploy" / "docker" / dockerfile).read_text()
    syncs = [line for line in text.splitlines() if "uv sync" in line]
    assert syncs and all("--frozen" in line for line in syncs)
    assert all(("--extra train" in line) == needs_train for line in syncs)
    assert re.search(r"^USER 10001$", text, re.M)
    assert "COPY pyproject.toml uv.lock" in text
