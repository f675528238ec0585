"""KubeSpawner pod manifests for the CPU and GPU profiles, built without a cluster."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from traitlets.config import Config

from aitip.hub.config import configure
from aitip.hub.kubernetes import GPU_RESOURCE, GPU_TOLERATION, PANEL_PREVIEW_OFF, load_profiles

kubespawner = pytest.importorskip("kubespawner")


@pytest.fixture
def kube_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Config:
    monkeypatch.setenv("AITIP_HOME", str(tmp_path))
    monkeypatch.setenv("AITIP_SPAWNER", "kubernetes")
    monkeypatch.setenv("AITIP_K8S_PLATFORM_URL", "http://hub:8181/services/aitip/")
    # No API server exists here: the spawner only needs one to start pods, not to build them.
    monkeypatch.setattr("kubespawner.spawner.load_config", lambda **kwargs: None)
    c = Config()
    configure(c)
    return c


async def _manifest(config: Config, profile: str | None):
    from kubespawner import KubeSpawner

    spawner = KubeSpawner(config=config, _mock=True)
    spawner.user_options = {"profile": profile} if profile else {}
    await spawner.load_user_options()
    return await spawner.get_pod_manifest()


@pytest.mark.asyncio
async def test_gpu_profile_asks_for_a_gpu_on_a_gpu_node(kube_config: Config) -> None:
    pod = await _manifest(kube_config, "gpu-1")
    container = pod.spec.containers[0]
    assert container.resources.limits[GPU_RESOURCE] == "1"
    assert container.resources.requests[GPU_RESOURCE] == "1"
    assert pod.spec.node_selector == {"nvidia.com/gpu.present": "true"}
    tolerations = [t.to_dict() if hasattr(t, "to_dict") else t for t in pod.spec.tolerations]
    assert any(t["key"] == GPU_TOLERATION["key"] and t["effect"] == "NoSchedule" for t in tolerations)
    env = {e.name: e.value for e in container.env}
    assert env["AITIP_KERNEL_DEVICE"] == "cuda"
    assert env["AITIP_PLATFORM_URL"] == "http://hub:8181/services/aitip/"


@pytest.mark.asyncio
async def test_four_gpu_profile(kube_config: Config) -> None:
    pod = await _manifest(kube_config, "gpu-4")
    assert pod.spec.containers[0].resources.limits[GPU_RESOURCE] == "4"


@pytest.mark.asyncio
async def test_default_profile_is_cpu_only(kube_config: Config) -> None:
    pod = await _manifest(kube_config, None)
    container = pod.spec.containers[0]
    assert GPU_RESOURCE not in (container.resources.limits or {})
    assert not pod.spec.node_selector
    assert {e.name: e.value for e in container.env}["AITIP_KERNEL_DEVICE"] == "cpu"
    # Panel's preview extension stays off in pods too (seconds per spawn), and pods never run as root.
    assert container.args == ["jupyterhub-singleuser", PANEL_PREVIEW_OFF]


def test_profiles_come_from_a_file_when_configured(tmp_path: Path) -> None:
    path = tmp_path / "profiles.json"
    path.write_text(json.dumps([{"display_name": "tiny", "slug": "tiny", "kubespawner_override": {}}]))
    assert load_profiles(str(path))[0]["slug"] == "tiny"
    path.write_text(json.dumps({"not": "a list"}))
    with pytest.raises(ValueError, match="expected a JSON list"):
        load_profiles(str(path))


@pytest.mark.asyncio
async def test_the_default_profiles_are_named_in_the_spawn_pages_language(kube_config: Config) -> None:
    """The spawn form KubeSpawner renders for a Chinese page names and describes the default profiles in Chinese;
    the slugs a spawn picks by are the same in both."""
    from kubespawner import KubeSpawner

    from aitip.hub import language

    spawner = KubeSpawner(config=kube_config, _mock=True)

    async def form_in(page_language: str) -> str:
        token = language._LANGUAGE.set(page_language)  # as the hub's RequestLanguage sets it for each request
        try:
            return await spawner.get_options_form()
        finally:
            language._LANGUAGE.reset(token)

    chinese, english = await form_in("zh_CN"), await form_in("en")
    assert "仅 CPU，2 个 CPU，8G" in chinese and "4 × NVIDIA GPU，32 个 CPU，192G" in chinese
    assert "GPU 节点上的 JupyterLab，独占 1 块 GPU；aitip-gpu 内核已就绪。" in chinese and "CPU only" not in chinese
    assert "CPU only, 2 CPU, 8G" in english and "4 x NVIDIA GPU, 32 CPU, 192G" in english
    for form in (chinese, english):
        assert all(f'value="{slug}"' in form for slug in ("cpu", "gpu-1", "gpu-4")), "the slugs stay"


@pytest.mark.asyncio
@pytest.mark.parametrize(("headers", "language"), [
    ({"Accept-Language": "zh-CN,zh;q=0.9"}, "zh_CN"),
    ({"Accept-Language": "zh-CN", "Cookie": "aitip_lang=en"}, "en"),  # the page's switch wins
    ({"Cookie": "aitip_lang=zh_CN"}, "zh_CN"),
    ({}, "en"),
])
async def test_a_pod_speaks_the_language_of_the_request_that_started_it(
        kube_config: Config, headers: dict[str, str], language: str) -> None:
    """``AITIP_LANG`` in the pod is the language of the request its owner started it with, so its notebooks'
    widgets and the SDK's refusals read as the page did (JupyterHub hands the spawner the request's handler while it
    starts); a pod the hub starts again by itself keeps it."""
    from kubespawner import KubeSpawner
    from tornado.httputil import HTTPHeaders, HTTPServerRequest

    spawner = KubeSpawner(config=kube_config, _mock=True)
    spawner.user_options = {}
    await spawner.load_user_options()
    spawner.handler = SimpleNamespace(
        request=HTTPServerRequest(method="POST", uri="/hub/api/users/ann/server", headers=HTTPHeaders(headers)),
        current_user=SimpleNamespace(name=spawner.user.name))
    pod = await spawner.get_pod_manifest()
    assert {e.name: e.value for e in pod.spec.containers[0].env}["AITIP_LANG"] == language
    spawner.handler = None  # a pod the hub starts again by itself
    pod = await spawner.get_pod_manifest()
    assert {e.name: e.value for e in pod.spec.containers[0].env}["AITIP_LANG"] == language
