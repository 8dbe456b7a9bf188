#!/bin/bash
# Structured pruning at --ratio 0.3 on the sample models and six torchvision
# classifiers (random weights): parameters and MACs before/after from the
# report, ONNX's checker (run by the CLI before saving) and a run in ONNX
# Runtime on the same random input as the original. Prints the Markdown
# table recorded in docs/structured.md.
#   bash bench/structured/run.sh BUILD_DIR
# Needs BUILD_DIR/tools/modelpress/modelpress and ONNX Runtime in BUILD_DIR/ort
# (bash tests/ort/install.sh BUILD_DIR/ort). Models go to BUILD_DIR/structured.
set -euo pipefail
build=$(realpath "$1")
src=$(cd "$(dirname "$0")/../.." && pwd)
out=$build/structured
cli=$build/tools/modelpress/modelpress
export MODELPRESS_ORT_DIR=${MODELPRESS_ORT_DIR:-$build/ort}
mkdir -p "$out"
for m in resnet18 mobilenet_v2 densenet121 squeezenet1_1 efficientnet_b0 shufflenet_v2_x1_0; do
  [ -f "$out/$m.onnx" ] || { /usr/bin/python3 "$src/bench/structured/make_models.py" --out "$out" >&2; break; }
done

echo "| model | groups pruned / total | parameters before → after | MACs before → after | checker | ONNX Runtime | time |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
models=()
for f in resnet_mini mobilenet_block transformer_tiny digits_cnn digits_mlp; do models+=("$src/sample_models/$f.onnx"); done
for f in resnet18 mobilenet_v2 densenet121 squeezenet1_1 efficientnet_b0 shufflenet_v2_x1_0; do models+=("$out/$f.onnx"); done
for model in "${models[@]}"; do
  name=$(basename "$model" .onnx)
  pruned=$out/$name.ratio03.onnx
  report=$out/$name.ratio03.json
  start=$(date +%s.%N)
  "$cli" prune channels "$model" -o "$pruned" --ratio 0.3 --report "$report" -q
  secs=$(echo "$(date +%s.%N) - $start" | bc)
  ort=$(node "$src/tests/ort/compare.mjs" "$model" "$pruned" --atol 1e30 --rtol 0 --batch 1 \
        | /usr/bin/python3 -c 'import json,sys; j=json.load(sys.stdin); print("runs" if j["passed"] else "FAILS")') || ort=FAILS
  /usr/bin/python3 - "$report" "$name" "$ort" "$secs" "$pruned" <<'PY'
import json, sys
import onnx
r = json.load(open(sys.argv[1]))
t = r["totals"]
# Count the written model's float parameters with python3-onnx, not with modelpress.
m = onnx.load(sys.argv[5])
floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE}
def count(ts): return sum(int(__import__("numpy").prod(x.dims)) for x in ts if x.data_type in floats)
n = count(m.graph.initializer) + count(a.t for node in m.graph.node if node.op_type == "Constant" for a in node.attribute if a.name == "value")
assert n == t["parameters_after"], f"{sys.argv[2]}: report says {t['parameters_after']} parameters, the file has {n}"
groups = r["groups"]
pruned = sum(1 for g in groups if g["pruned"])
def pct(a, b): return f"{(1 - a / b) * 100:.1f}%" if b else "-"
print(f"| {sys.argv[2]} | {pruned} / {len(groups)} | {t['parameters_before']:,} → {t['parameters_after']:,} (−{pct(t['parameters_after'], t['parameters_before'])}) "
      f"| {t['macs_before']:,} → {t['macs_after']:,} (−{pct(t['macs_after'], t['macs_before'])}) | passes | {sys.argv[3]} | {float(sys.argv[4]):.2f} s |")
PY
done
