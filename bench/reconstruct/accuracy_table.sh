#!/usr/bin/env bash
# Magnitude pruning with and without reconstruction (--reconstruct), judged by
# ONNX Runtime: top-1 of the digits models on their test split (calibration
# from the training split only), and the cosine similarity of the outputs of
# the random-weight resnet_mini and transformer_tiny against the dense model
# (calibration and evaluation inputs from different seeds).
# usage: bench/reconstruct/accuracy_table.sh [BUILD_DIR]   (prints Markdown tables)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$ROOT/bench/common.sh" "$@"
ort_setup
SAMPLES="${SAMPLES:-256}"

mean_cosine() {  # dense pruned data
  node "$ROOT/tests/ort/cosine.mjs" "$1" "$2" "$3" --batch 64 | sed -E 's/.*"mean_cosine":([-0-9.e]+).*/\1/' |
    awk '{printf "%.4f", $1}'
}
# prune KIND MODEL OUT CALIB [extra flags...]; KIND is "s" (a sparsity, global) or "nm"
prune() {
  local kind=$1 model=$2 out=$3 calib=$4
  shift 4
  if [ "$kind" = nm ]; then
    [ "${1:-}" = --steps ] && shift 2  # N:M has no steps
    "$MP" prune nm "$model" -o "$out" -q "$@" ${calib:+--reconstruct --calib-data "$calib" --samples "$SAMPLES"}
  else
    "$MP" prune unstructured "$model" -o "$out" -q --scope global --sparsity "$kind" "$@" \
      ${calib:+--reconstruct --calib-data "$calib" --samples "$SAMPLES"}
  fi
}

echo "Top-1 (%) on the digits test split, global unstructured sparsity and 2:4; calibration: $SAMPLES training samples."
echo
echo "| model | dense | method | 50% | 70% | 80% | 90% | 95% | 2:4 |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for m in mlp cnn; do
  model="$S/digits_$m.onnx"
  x="$S/digits_test_x.npy"
  calib="$S/digits_train_x.npy"
  if [ "$m" = cnn ]; then
    x="$S/digits_test_img.npy"
    calib="$S/digits_train_img.npy"
  fi
  y="$S/digits_test_y.npy"
  dense=$(top1 "$model" "$x" "$y")
  for method in magnitude reconstruct-1-step reconstruct reconstruct-obs; do
    c="" extra=()
    [ "$method" != magnitude ] && c="$calib"
    [ "$method" = reconstruct-1-step ] && extra=(--steps 1)
    [ "$method" = reconstruct-obs ] && extra=(--saliency obs)
    row="| digits_$m | $dense | $method |"
    for s in 0.5 0.7 0.8 0.9 0.95 nm; do
      prune "$s" "$model" "$tmp/p.onnx" "$c" "${extra[@]}"
      row="$row $(top1 "$tmp/p.onnx" "$x" "$y") |"
    done
    echo "$row"
  done
done

/usr/bin/python3 "$ROOT/bench/reconstruct/make_inputs.py" "$tmp"
echo
echo "Mean cosine similarity of the outputs against the dense model (128 evaluation inputs; calibration: $SAMPLES other inputs)."
echo
echo "| model | method | 50% | 70% | 80% | 90% | 95% | 2:4 |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for m in resnet_mini transformer_tiny; do
  model="$S/$m.onnx"
  for method in magnitude reconstruct-1-step reconstruct reconstruct-obs; do
    c="" extra=()
    [ "$method" != magnitude ] && c="$tmp/${m}_calib.npy"
    [ "$method" = reconstruct-1-step ] && extra=(--steps 1)
    [ "$method" = reconstruct-obs ] && extra=(--saliency obs)
    row="| $m | $method |"
    for s in 0.5 0.7 0.8 0.9 0.95 nm; do
      prune "$s" "$model" "$tmp/p.onnx" "$c" "${extra[@]}"
      row="$row $(mean_cosine "$model" "$tmp/p.onnx" "$tmp/${m}_eval.npy") |"
    done
    echo "$row"
  done
done
