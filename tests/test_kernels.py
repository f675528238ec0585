"""The kernel specs are installed with the platform and say what they need."""

from __future__ import annotations

from jupyter_client.kernelspec import KernelSpecManager


def test_platform_kernels_are_installed_and_declare_their_resources() -> None:
    specs = KernelSpecManager().get_all_specs()
    assert {"aitip-python", "aitip-gpu"} <= set(specs)
    cpu = specs["aitip-python"]["spec"]
    gpu = specs["aitip-gpu"]["spec"]
    assert cpu["metadata"]["aitip"]["resources"]["gpus"] == 0
    assert gpu["metadata"]["aitip"]["resources"]["gpus"] == 1
    assert gpu["metadata"]["aitip"]["resources"]["gpu_vendor"] == "nvidia.com/gpu"
    assert gpu["env"]["AITIP_KERNEL_DEVICE"] == "cuda"
