"""Whole-model functions give the CLI's reports and files."""
import json
import pathlib

import numpy as np
import onnx
import pytest

import modelpress


def test_prune_file_report_and_output_match_the_cli(tmp_path, samples, cli):
    src = samples / "digits_mlp.onnx"
    report = modelpress.prune_file(str(src), str(tmp_path / "py.onnx"), sparsity=0.9, scope="global")
    cli("prune", "unstructured", src, "-o", tmp_path / "cli.onnx", "--sparsity", "0.9", "--scope", "global",
        "--report", tmp_path / "cli.json", "-q")
    assert report == json.loads((tmp_path / "cli.json").read_text())
    assert report["method"] == "unstructured-global"
    assert (tmp_path / "py.onnx").read_bytes() == (tmp_path / "cli.onnx").read_bytes()
    nm = modelpress.prune_file(str(src), str(tmp_path / "nm.onnx"), method="nm", n=2, m=4)
    assert nm["method"] == "nm"
    assert all(t["nm_2_4"] in ("yes", "n/a") for t in modelpress.inspect_file(str(tmp_path / "nm.onnx"))["tensors"])


def test_quantize_file_static_with_array_or_path(tmp_path, samples, cli):
    src = samples / "digits_mlp.onnx"
    x = samples / "digits_train_x.npy"
    a = modelpress.quantize_file(str(src), str(tmp_path / "a.onnx"), mode="static", calib_data=str(x))
    b = modelpress.quantize_file(str(src), str(tmp_path / "b.onnx"), mode="static", calib_data=np.load(x))
    assert a["mode"] == "static" and a["calibration_samples"] == 1437
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()
    cli("quantize", src, "-o", tmp_path / "c.onnx", "--mode", "static", "--calib-data", x, "--report",
        tmp_path / "c.json", "-q")
    assert a == json.loads((tmp_path / "c.json").read_text())
    ops = {n.op_type for n in onnx.load(str(tmp_path / "a.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops


def test_pack_unpack_inspect_round_trip(tmp_path, samples, cli):
    src = samples / "digits_mlp.onnx"
    packed = modelpress.pack_file(src, tmp_path / "m.mpk")  # pathlib paths work as str does
    assert packed["artifact_bytes"] == (tmp_path / "m.mpk").stat().st_size
    assert packed["input_bytes"] == src.stat().st_size
    assert {t["name"] for t in packed["tensors"]} >= {"fc1.weight", "fc2.weight"}
    un = modelpress.unpack_file(tmp_path / "m.mpk", tmp_path / "u.onnx")
    assert pathlib.Path(un["written"][0]) == tmp_path / "u.onnx"
    onnx.checker.check_model(onnx.load(str(tmp_path / "u.onnx")))
    for path in (src, tmp_path / "m.mpk"):
        assert modelpress.inspect_file(str(path)) == json.loads(cli("inspect", "--json", path))
    # The CLI's pack and unpack options: every tensor kept in the graph, a 1 MiB buffer.
    inline = modelpress.pack_file(src, tmp_path / "i.mpk", min_tensor_bytes=10**9, inline_up_to=0)
    assert inline["tensors"] == []
    modelpress.unpack_file(tmp_path / "i.mpk", tmp_path / "i.onnx", buffer_mib=1)
    assert (tmp_path / "i.onnx").read_bytes() == src.read_bytes()
    with pytest.raises(ValueError):
        modelpress.pack_file(src, tmp_path / "x.mpk", inline_up_to=65537)
    with pytest.raises(ValueError):
        modelpress.unpack_file(tmp_path / "m.mpk", tmp_path / "x.onnx", buffer_mib=0)
    assert not (tmp_path / "x.mpk").exists() and not (tmp_path / "x.onnx").exists()
