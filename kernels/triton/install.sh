#!/usr/bin/env bash
# Builds the separate Triton Model Navigator environment on a GPU machine and registers its kernel
# (aitip-triton) with the platform's Jupyter. Needs an NVIDIA driver and CUDA; not run in CI.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
prefix="${AITIP_TRITON_ENV:-$here/../../.venv-triton}"
python3 -m venv "$prefix"
"$prefix/bin/python" -m pip install -q --upgrade pip
"$prefix/bin/python" -m pip install -q --extra-index-url https://pypi.nvidia.com -r "$here/requirements.txt"
target="${JUPYTER_DATA_DIR:-$(dirname "$here")/../.venv/share/jupyter}/kernels/aitip-triton"
mkdir -p "$target"
cat > "$target/kernel.json" <<JSON
{
  "argv": ["$prefix/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
  "display_name": "AITIP Triton Model Navigator (1 GPU)",
  "language": "python",
  "env": {"AITIP_KERNEL": "aitip-triton", "AITIP_KERNEL_DEVICE": "cuda"},
  "metadata": {"aitip": {"device": "cuda", "resources": {"cpus": 2, "gpus": 1, "gpu_vendor": "nvidia.com/gpu"}}}
}
JSON
echo "registered kernel aitip-triton -> $prefix"
