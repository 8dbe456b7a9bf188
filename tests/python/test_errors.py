"""Bad input raises Python exceptions with the library's message; nothing crashes."""
import os

import numpy as np
import pytest
import torch

import modelpress


def test_sparsity_outside_range():
    w = np.ones((4, 4), np.float32)
    for s in (-0.1, 1.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="outside"):
            modelpress.unstructured_mask(w, s)
        with pytest.raises(ValueError, match="outside"):
            modelpress.global_masks([w], s)


def test_wrong_dtypes():
    with pytest.raises(TypeError, match="float32, float16 or bfloat16"):
        modelpress.unstructured_mask(np.ones(8, np.float64), 0.5)
    with pytest.raises(TypeError, match="float32, float16 or bfloat16"):
        modelpress.unstructured_mask(np.ones(8, np.int32), 0.5)
    with pytest.raises(TypeError, match="bfloat16"):
        modelpress.unstructured_mask(np.ones(8, np.int16), 0.5)
    with pytest.raises(TypeError):
        modelpress.unstructured_mask(torch.ones(8, dtype=torch.float64), 0.5)
    with pytest.raises(ValueError, match="unknown dtype"):
        modelpress.unstructured_mask(np.ones(8, np.float32), 0.5, dtype="int4")
    with pytest.raises(TypeError):
        modelpress.unstructured_mask("not a tensor", 0.5)


def test_non_contiguous_tensors_are_refused_not_copied():
    w = np.ones((8, 8), np.float32)
    with pytest.raises(ValueError, match="C-contiguous"):
        modelpress.unstructured_mask(w.T, 0.5)
    with pytest.raises(ValueError, match="C-contiguous"):
        modelpress.nm_mask(torch.ones(8, 8).t(), 2, 4)
    # A contiguous copy made by the caller works.
    assert modelpress.unstructured_mask(np.ascontiguousarray(w.T), 0.5).shape == (8, 8)


def test_roles_that_do_not_fit_the_shape():
    with pytest.raises(ValueError, match="role 'linear' expects"):
        modelpress.nm_mask(np.ones((4, 4, 3, 3), np.float32), 2, 4, "linear")
    with pytest.raises(ValueError, match="role 'conv' expects"):
        modelpress.nm_mask(np.ones((4, 8), np.float32), 2, 4, "conv")
    with pytest.raises(ValueError, match="unknown role"):
        modelpress.nm_mask(np.ones((4, 8), np.float32), 2, 4, "embedding")
    with pytest.raises(ValueError, match="not a multiple of M = 4"):
        modelpress.nm_mask(np.ones((4, 6), np.float32), 2, 4, "linear")
    with pytest.raises(ValueError, match="0 <= N <= M"):
        modelpress.nm_mask(np.ones((4, 8), np.float32), 5, 4)


def test_calibration_data_of_the_wrong_type_or_shape(tmp_path, samples):
    src = str(samples / "digits_mlp.onnx")
    with pytest.raises(TypeError, match="calib_data must be float32"):
        modelpress.quantize_file(src, str(tmp_path / "q.onnx"), mode="static", calib_data=np.ones((4, 64)))
    with pytest.raises(modelpress.CorruptError, match="expects"):
        modelpress.quantize_file(src, str(tmp_path / "q.onnx"), mode="static", calib_data=np.ones((4, 5), np.float32))
    assert not (tmp_path / "q.onnx").exists()


def test_bad_previous_masks_and_schedules():
    w = np.ones(10, np.float32)
    with pytest.raises(ValueError, match="previous mask has 5 elements"):
        modelpress.unstructured_mask(w, 0.5, previous=np.ones(5, bool))
    with pytest.raises(TypeError, match="bool or uint8"):
        modelpress.unstructured_mask(w, 0.5, previous=np.ones(10, np.float32))
    with pytest.raises(ValueError):
        modelpress.agp_sparsity(5, 10, 10, 0.0, 0.9)
    with pytest.raises(ValueError):
        modelpress.agp_sparsity(5, 0, 10, 0.0, 1.0)
    with pytest.raises(ValueError):
        modelpress.iterative_rounds(0.0, 0.9)
    with pytest.raises(ValueError, match="apply_mask: mask has 3 elements"):
        modelpress.apply_mask(np.ones(4, np.float32), np.ones(3, bool))
    with pytest.raises(ValueError, match="read-only"):
        ro = np.ones(8, np.float32)
        ro.flags.writeable = False
        modelpress.apply_mask(ro, np.ones(8, bool))


def test_file_errors_map_to_exception_types(tmp_path, samples):
    out = tmp_path / "o.onnx"
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        modelpress.prune_file(str(tmp_path / "missing.onnx"), str(out))
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07this is not a protobuf" * 10)
    with pytest.raises(modelpress.CorruptError, match="garbage.onnx"):
        modelpress.prune_file(str(garbage), str(out))
    assert issubclass(modelpress.CorruptError, ValueError)
    with pytest.raises(modelpress.CorruptError, match="garbage.onnx"):
        modelpress.inspect_file(str(garbage))
    src = str(samples / "digits_mlp.onnx")
    with pytest.raises(ValueError, match="outside"):
        modelpress.prune_file(src, str(out), sparsity=1.2)
    with pytest.raises(ValueError, match="overwrite the input"):
        modelpress.prune_file(src, src)
    with pytest.raises(ValueError, match="calib_data"):
        modelpress.quantize_file(src, str(out), mode="static")
    with pytest.raises(ValueError, match="level"):
        modelpress.pack_file(src, str(tmp_path / "a.mpk"), level=99)
    assert not out.exists()
    bad = tmp_path / "bad.mpk"
    modelpress.pack_file(src, str(bad))
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(modelpress.CorruptError):
        modelpress.unpack_file(str(bad), str(tmp_path / "u.onnx"))
    assert not (tmp_path / "u.onnx").exists()
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(OSError):
            modelpress.prune_file(src, str(locked / "o.onnx"))


def test_unsupported_and_permission_errors(tmp_path, samples):
    src = str(samples / "digits_mlp.onnx")
    q = tmp_path / "q.onnx"
    modelpress.quantize_file(src, str(q))
    with pytest.raises(modelpress.UnsupportedError, match="already quantized|quantized"):
        modelpress.quantize_file(str(q), str(tmp_path / "qq.onnx"))
    assert not (tmp_path / "qq.onnx").exists()

    # External data whose location leaves the model's folder is refused.
    import onnx
    from onnx import helper, TensorProto

    (tmp_path / "secret.bin").write_bytes(b"\0" * 16)
    inner = tmp_path / "model"
    inner.mkdir()
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4])
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "../secret.bin"), ("offset", "0"), ("length", "16")):
        e = w.external_data.add()
        e.key, e.value = k, v
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])], [w])
    (inner / "escape.onnx").write_bytes(helper.make_model(graph).SerializeToString())
    with pytest.raises(PermissionError, match="escape.onnx"):
        modelpress.inspect_file(str(inner / "escape.onnx"))
