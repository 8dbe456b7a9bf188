#!/usr/bin/env bash
# Global 90% magnitude pruning of a ~400 MB MLP: modelpress against
# torch.nn.utils.prune.global_unstructured and a plain read+write of the same
# file (modelpress convert), all measured in this run on this machine.
# usage: bench/prune/bench_prune.sh [BUILD_DIR] [WORK_DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$ROOT/bench/common.sh" "$@"
mlp_setup prune "${2:-}"
measure "plain read+write (convert)" "$MP" convert "$WORK/mlp.onnx" -o "$WORK/out.onnx" --no-check
measure "modelpress prune global 0.9" "$MP" prune unstructured "$WORK/mlp.onnx" -o "$WORK/out.onnx" --sparsity 0.9 --scope global -q --no-check
measure "torch global_unstructured 0.9" /usr/bin/python3 "$ROOT/bench/prune/torch_global_prune.py" "$WORK/mlp.onnx" 0.9 "$WORK/out.bin"
