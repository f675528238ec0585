"""Through the real hub and proxy: a dataset registered with the CLI, changed, re-registered, diffed and
restored; the SDK's masked read for a viewer; and the notebook widgets (run compare, GPU gauge) built on
the same client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import nbformat

from aitip.client import Client
from aitip.i18n import translator
from aitip.widgets import GpuGauge, RunCompare
from tests.support.platform import RunningPlatform

AITIP = str(Path(sys.executable).parent / "aitip")


def _cli(platform: RunningPlatform, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AITIP_URL": f"{platform.url}/services/aitip/", "AITIP_TOKEN": token}
    return subprocess.run([AITIP, *args], env=env, capture_output=True, text=True, timeout=120)


def test_dataset_lifecycle_from_the_cli(platform: RunningPlatform, people: dict[str, str], tmp_path: Path) -> None:
    with platform.api(people["ann"]) as ann:
        assert ann.post("projects", json={"name": "data-demo"}).status_code == 201
        assert ann.post("projects/data-demo/members", json={"user": "bob", "role": "viewer"}).status_code == 201
    first = tmp_path / "users.csv"
    first.write_text("id,email,score\n1,ann@example.org,0.5\n2,bob@example.org,0.9\n")
    added = _cli(platform, people["ann"], "data", "add", "users", str(first), "-P", "data-demo", "-m", "first")
    assert added.returncode == 0 and "users v1 registered (2 rows" in added.stdout, added.stderr
    first.write_text("id,email,score,label\n1,ann@example.org,0.5,a\n2,bob@example.org,0.9,b\n3,c@x.org,0.1,a\n")
    assert _cli(platform, people["ann"], "data", "add", "users", str(first), "-P", "data-demo").returncode == 0
    diff = _cli(platform, people["bob"], "data", "diff", "users", "1", "2", "-P", "data-demo", "--json")
    assert diff.returncode == 0, diff.stderr
    changes = json.loads(diff.stdout)
    assert changes["row_delta"] == 1 and changes["schema_changes"][0]["column"] == "label"
    refused = _cli(platform, people["bob"], "data", "restore", "users", "1", "-P", "data-demo")
    assert refused.returncode == 1 and "403" in refused.stderr
    restored = _cli(platform, people["ann"], "data", "restore", "users", "1", "-P", "data-demo", "--json")
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["restored_from"] == 1
    versions = _cli(platform, people["bob"], "data", "versions", "users", "-P", "data-demo", "--json")
    assert [v["version"] for v in json.loads(versions.stdout)] == [1, 2, 3]

    with Client(f"{platform.url}/services/aitip/", people["ann"]) as ann_client:
        ann_client.request("PATCH", "projects/data-demo/datasets/users", json_body={"sensitive_columns": {"email": "hash"}})
    with Client(f"{platform.url}/services/aitip/", people["bob"]) as bob_client:
        os.environ["AITIP_DATASET_CACHE"] = str(tmp_path / "cache")
        try:
            import aitip.datasets

            frame = aitip.datasets.to_pandas("users", 3, project="data-demo", client=bob_client)
        finally:
            os.environ.pop("AITIP_DATASET_CACHE")
    assert list(frame["id"]) == [1, 2] and not any("@" in value for value in frame["email"])


def test_a_job_behind_the_hub_reads_an_undeclared_version_as_lineage(platform: RunningPlatform,
                                                                      people: dict[str, str]) -> None:
    """The platform service started by the hub hands its kernels its own URL and the job's credential."""
    with platform.api(people["ann"]) as ann:
        assert ann.post("projects", json={"name": "lineage-sdk"}).status_code == 201
        assert ann.post("projects/lineage-sdk/members", json={"user": "bob", "role": "developer"}).status_code == 201
        uploaded = ann.post("projects/lineage-sdk/datasets/points/versions", params={"filename": "points.csv"},
                            content=b"x,y\n1,2\n3,4\n", headers={"Content-Type": "application/octet-stream"})
        assert uploaded.status_code == 201, uploaded.text
    reader = nbformat.v4.new_notebook()
    reader.cells = [nbformat.v4.new_code_cell("import aitip.datasets\n"
                                              "print('sum', int(aitip.datasets.to_pandas('points', 1)['y'].sum()))")]
    reader.metadata["kernelspec"] = {"name": "aitip-python", "display_name": "AITIP", "language": "python"}
    with platform.api(people["bob"]) as bob:
        submitted = bob.post("jobs", json={"project": "lineage-sdk", "notebook": dict(reader)})
        assert submitted.status_code == 201, submitted.text
    job = platform.wait_for_job(people["bob"], submitted.json()["id"], {"succeeded", "failed"})
    assert job["state"] == "succeeded", job["reason"]
    assert [(i["dataset"], i["version"], i["how"]) for i in job["inputs"]] == [("points", 1, "sdk")]
    with platform.api(people["bob"]) as bob:
        graph = bob.get("lineage", params={"node": "dataset:lineage-sdk/points@1"}).json()
    assert f"job:{job['id']}" in {node["id"] for node in graph["nodes"]}


def _metrics_notebook() -> dict:
    notebook = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell("lr = 0.1")
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [parameters, nbformat.v4.new_code_cell(
        "import mlflow\nfor step in range(5):\n    mlflow.log_metric('loss', lr * (5 - step), step=step)\n"
        "mlflow.log_param('lr', lr)")]
    notebook.metadata["kernelspec"] = {"name": "aitip-python", "display_name": "AITIP", "language": "python"}
    return dict(notebook)


def test_run_compare_and_gpu_gauge_widgets(platform: RunningPlatform, people: dict[str, str]) -> None:
    with platform.api(people["ann"]) as ann:
        assert ann.post("projects", json={"name": "widgets"}).status_code == 201
        ids = [ann.post("jobs", json={"project": "widgets", "notebook": _metrics_notebook(),
                                      "parameters": {"lr": lr}}).json()["id"] for lr in (0.1, 0.3)]
    jobs = [platform.wait_for_job(people["ann"], job_id, {"succeeded", "failed"}) for job_id in ids]
    assert [j["state"] for j in jobs] == ["succeeded", "succeeded"], jobs

    client = Client(f"{platform.url}/services/aitip/", people["ann"])
    compare = RunCompare("widgets", client)
    deadline = time.monotonic() + 30
    while len(compare.picker.options) < 2 and time.monotonic() < deadline:  # MLflow runs land with the jobs
        time.sleep(1)
        compare.search()
    assert len(compare.picker.options) == 2
    comparison = compare.compare([value for _, value in compare.picker.options])
    assert comparison.differing_params == ["lr"]
    assert sorted(comparison.metrics["loss"].values()) == [0.1, 0.3]
    assert "<td><b>lr</b></td>" in compare.table.value
    assert sorted(len(points) for points in comparison.curves["loss"].values()) == [5, 5]

    gauge = GpuGauge(client, follow=False)
    assert "no GPU" in gauge.title.value and len(gauge.bars.children) == 2  # this machine has none
    client.close()


def _stop_server(platform: RunningPlatform, username: str, admin_token: str) -> None:
    with platform.hub_api(admin_token) as hub:
        assert hub.delete(f"users/{username}/server").status_code in (202, 204, 400)  # 400: not running
        deadline = time.monotonic() + 60
        while hub.get(f"users/{username}").json()["servers"]:
            assert time.monotonic() < deadline, f"{username}'s server did not stop"
            time.sleep(0.2)


def test_a_server_an_admin_starts_again_from_an_english_page_speaks_its_owners_language(
        platform: RunningPlatform, people: dict[str, str]) -> None:
    """Bob starts his server from a Chinese page; the admin stops it and starts it again from the hub's admin page
    in English: its kernels still speak Chinese (the hub keeps bob's language in the spawner's state)."""
    _stop_server(platform, "bob", people["admin"])
    platform.spawn("bob", people["bob"], accept_language="zh-CN,zh;q=0.9")
    _stop_server(platform, "bob", people["admin"])
    platform.spawn("bob", people["admin"], accept_language="en-US,en;q=0.9")
    result = platform.run_in_kernel("bob", people["bob"], "import os\nprint(os.environ.get('AITIP_LANG'))")
    assert result["error"] is None and result["stdout"].strip().splitlines()[-1] == "zh_CN", result


def test_a_server_started_from_a_chinese_page_speaks_chinese_in_its_notebooks(
        platform: RunningPlatform, people: dict[str, str]) -> None:
    """Bob starts his server from a Chinese page and sets nothing himself: in its kernels the widgets and the
    SDK's refusals are in Chinese (``AITIP_LANG`` from the spawning request), NVML's own error as NVML wrote it."""
    platform.spawn("bob", people["bob"], accept_language="zh-CN,zh;q=0.9,en;q=0.5")
    code = (
        "import json, os\nimport aitip\nfrom aitip.widgets import GpuGauge\nclient = aitip.Client()\n"
        "gauge = GpuGauge(client, follow=False)\n"
        "try:\n    client.get_job(987654)\nexcept aitip.AitipAPIError as refused:\n    message = refused.message\n"
        "print(json.dumps({'language': os.environ.get('AITIP_LANG'), 'title': gauge.title.value,\n"
        "                  'bars': [bar.children[0].description for bar in gauge.bars.children],\n"
        "                  'refused': message}, ensure_ascii=False))\n")
    result = platform.run_in_kernel("bob", people["bob"], code, timeout=120)
    assert result["error"] is None, result["error"]
    shown = json.loads(result["stdout"].strip().splitlines()[-1])
    said = translator("zh_CN").gettext
    assert shown["language"] == "zh_CN"
    assert shown["title"].startswith("<b>无 GPU</b>（") and shown["title"].endswith("）：CPU 与内存"), shown
    assert shown["bars"] == ["CPU", "内存"]
    assert shown["refused"] == said("job {job_id} does not exist or is not in a project you belong to").format(
        job_id=987654), shown
    # JupyterLab itself: its language setting follows the page, and its Chinese words are installed.
    with httpx.Client(base_url=f"{platform.url}/user/bob/lab/api/", timeout=60,
                      headers={"Authorization": f"token {people['bob']}"}) as lab:
        setting = lab.get("settings/@jupyterlab/translation-extension:plugin")
        assert setting.status_code == 200 and setting.json()["settings"]["locale"] == "zh_CN", setting.text
        words = lab.get("translations/zh_CN").json()
        assert words["message"] == "" and words["data"]["jupyterlab"][""]["language"] == "zh-CN", words["message"]
