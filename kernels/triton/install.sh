#!/usr/bin/env bash
# Builds the separate Triton Model Navigator environment and registers its kernel (aitip-triton) with the
# platform's Jupyter. On a GPU machine (NVIDIA driver and CUDA) with TensorRT from pypi.nvidia.com:
#   bash kernels/triton/install.sh
# On a machine without a GPU, the navigator without TensorRT, its kernel on the CPU (the ONNX path only:
# `aitip serve optimize --device cpu`):
#   bash kernels/triton/install.sh --cpu
# Not run in CI.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
prefix="${AITIP_TRITON_ENV:-$here/../../.venv-triton}"
device=cuda
if [ "${1:-}" = "--cpu" ]; then
  device=cpu
fi
python3 -m venv "$prefix"
"$prefix/bin/python" -m pip install -q --upgrade pip
if [ "$device" = cuda ]; then
  "$prefix/bin/python" -m pip install -q --extra-index-url https://pypi.nvidia.com -r "$here/requirements.txt"
  gpus=1
  name="AITIP Triton Model Navigator (1 GPU)"
else
  # The navigator requires tensorrt, which installs only where pypi.nvidia.com and a driver are: everything
  # else it requires, and then the navigator itself without its requirements.
  grep -v '^triton-model-navigator' "$here/requirements.txt" > "$prefix/requirements-cpu.txt"
  "$prefix/bin/python" -m pip install -q -r "$prefix/requirements-cpu.txt" -r "$here/requirements-cpu.txt"
  "$prefix/bin/python" -m pip install -q --no-deps "triton-model-navigator==0.14.0"
  gpus=0
  name="AITIP Triton Model Navigator (CPU)"
fi
target="${JUPYTER_DATA_DIR:-$(dirname "$here")/../.venv/share/jupyter}/kernels/aitip-triton"
mkdir -p "$target"
cat > "$target/kernel.json" <<JSON
{
  "argv": ["$prefix/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
  "display_name": "$name",
  "language": "python",
  "env": {"AITIP_KERNEL": "aitip-triton", "AITIP_KERNEL_DEVICE": "$device"},
  "metadata": {"aitip": {"device": "$device", "resources": {"cpus": 2, "gpus": $gpus, "gpu_vendor": "nvidia.com/gpu"}}}
}
JSON
echo "registered kernel aitip-triton ($device) -> $prefix"
