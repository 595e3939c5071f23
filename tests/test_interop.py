"""DLPack (memory shared both ways, dtypes kept) and .safetensors files through save / load."""
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

import autonet
from autonet import Tensor

DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int32, np.int64, np.uint8, np.bool_]


# ------------------------------------------------------------------ DLPack
@pytest.mark.parametrize("dtype", DTYPES)
def test_numpy_reads_a_tensor_through_dlpack_sharing_its_memory(dtype):
    t = Tensor(np.arange(6).reshape(2, 3), dtype=dtype)
    shared = np.from_dlpack(t)
    assert shared.dtype == dtype and shared.shape == (2, 3)
    shared[1, 2] = 1                      # write through NumPy's side ...
    assert t.data[1, 2] == 1              # ... the tensor sees it
    t.data[0, 0] = 1                      # and the other way
    assert shared[0, 0] == 1
    assert np.shares_memory(shared, t.data)


@pytest.mark.parametrize("dtype", DTYPES)
def test_from_dlpack_shares_a_numpy_arrays_memory_and_keeps_its_dtype(dtype):
    array = np.zeros((3, 2), dtype=dtype)
    t = autonet.from_dlpack(array)
    assert isinstance(t, Tensor) and t.dtype == dtype and t.shape == (3, 2)
    assert not t.requires_grad and t.is_leaf
    array[2, 1] = 1
    assert t.data[2, 1] == 1
    t.data[0, 0] = 1
    assert array[0, 0] == 1


def test_from_dlpack_of_a_strided_view_and_of_a_tensor():
    base = np.arange(12.0).reshape(3, 4)
    view = autonet.from_dlpack(base.T[1:])           # strides travel too
    np.testing.assert_array_equal(view.data, base.T[1:])
    base[0, 2] = -1.0
    assert view.data[1, 0] == -1.0
    t = Tensor([1.0, 2.0])
    again = autonet.from_dlpack(t)
    again.data[0] = 7.0
    assert t.data[0] == 7.0
    assert t.__dlpack_device__() == (1, 0)


def test_dlpack_refuses_a_tensor_that_requires_grad_and_what_it_cannot_take():
    t = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Can't export tensors that require gradient, use tensor\.detach\(\)"):
        np.from_dlpack(t)
    with pytest.raises(RuntimeError, match="require gradient"):
        autonet.from_dlpack(t * 2)
    shared = np.from_dlpack(t.detach())              # the fix the message names
    shared[0] = 3.0
    assert t.data[0] == 3.0 and t.requires_grad and t.grad is None
    with pytest.raises(TypeError, match="from_dlpack takes an array with __dlpack__.*list"):
        autonet.from_dlpack([1.0, 2.0])
    with pytest.raises(TypeError, match="complex"):
        autonet.from_dlpack(np.zeros(2, dtype=np.complex128))


def test_torch_shares_memory_both_ways_when_installed():
    torch = pytest.importorskip("torch", reason="torch is not installed (the bench extra)")
    original = torch.arange(4, dtype=torch.float32)
    t = autonet.from_dlpack(original)
    original[0] = 9.0
    assert t.dtype == np.float32 and t.data[0] == 9.0
    back = torch.from_dlpack(Tensor(np.ones(3)))
    assert back.dtype == torch.float64 and back.tolist() == [1.0, 1.0, 1.0]



def test_a_dtype_numpy_lacks_is_refused_saying_to_convert_it_when_torch_is_installed():
    torch = pytest.importorskip("torch", reason="torch is not installed (the bench extra)")
    with pytest.raises(TypeError, match=r"bfloat16, float8.*tensor.float\(\)"):   # was NumPy's
        autonet.from_dlpack(torch.ones(2, dtype=torch.bfloat16))     # "Unsupported dtype in DLTensor"


def test_jax_arrays_cross_without_a_copy_when_installed():
    jnp = pytest.importorskip("jax.numpy", reason="jax is not installed")
    source = jnp.arange(3.0)
    t = autonet.from_dlpack(source)
    np.testing.assert_array_equal(t.data, [0.0, 1.0, 2.0])


# ------------------------------------------------------------------ safetensors
safetensors_numpy = pytest.importorskip("safetensors.numpy", reason="the 'interop' extra is not installed")


def test_save_and_load_round_trip_every_dtype(tmp_path):
    path = tmp_path / "weights.safetensors"
    state = {f"w_{np.dtype(d).name}": np.arange(6).reshape(2, 3).astype(d) for d in DTYPES}
    state["tensor"] = Tensor([[0.5, -1.5]], requires_grad=True)   # Tensors are saved by value
    state["scalar"] = np.array(3.25)
    state["tensor scalar"] = Tensor([1.0, 2.0]).sum()
    autonet.save(state, path)
    loaded = autonet.load(path)
    assert sorted(loaded) == sorted(state)
    for key, value in state.items():
        expected = value.data if isinstance(value, Tensor) else value
        assert loaded[key].dtype == expected.dtype and loaded[key].shape == expected.shape
        np.testing.assert_array_equal(loaded[key], expected)


def test_views_fortran_order_and_big_endian_arrays_keep_their_values(tmp_path):
    """The package writes an array's raw buffer: a strided view or a Fortran-ordered array
    must be laid out in C order first (they came back scrambled)."""
    path = tmp_path / "layouts.safetensors"
    grid = np.arange(12.0).reshape(3, 4)
    state = {"strided": np.arange(10.0)[::3], "fortran": np.asfortranarray(grid),
             "transposed": Tensor(grid).T, "big-endian": np.arange(3, dtype=">f8"),
             "negative stride": grid[::-1, 1:]}
    autonet.save(state, path)
    loaded = autonet.load(path)
    for key, value in state.items():
        np.testing.assert_array_equal(loaded[key], value.data if isinstance(value, Tensor) else value)


def test_the_file_is_the_safetensors_format_read_by_the_package_itself(tmp_path):
    path = tmp_path / "model.safetensors"
    model = autonet.nn.Linear(3, 2, rng=0)
    autonet.save(model.state_dict(), str(path))
    raw = path.read_bytes()
    header_size = struct.unpack("<Q", raw[:8])[0]    # the format: a little-endian size, a JSON header
    header = json.loads(raw[8:8 + header_size])
    assert header["weight"]["dtype"] == "F64" and header["weight"]["shape"] == list(model.weight.shape)
    read = safetensors_numpy.load_file(str(path))
    np.testing.assert_array_equal(read["weight"], model.weight.data)
    fresh = autonet.nn.Linear(3, 2, rng=1)
    fresh.load_state_dict(autonet.load(path))
    np.testing.assert_array_equal(fresh.bias.data, model.bias.data)


def test_empty_and_zero_size_arrays_and_every_integer_width_round_trip_in_name_order(tmp_path):
    path = tmp_path / "edge.safetensors"
    autonet.save({}, path)
    assert autonet.load(path) == {}
    state = {"z": np.zeros((0, 3)), "b": np.arange(3, dtype=np.uint16), "a": np.arange(3, dtype=np.uint64),
             "c": np.arange(3, dtype=np.int16), "d": np.arange(3, dtype=np.uint32)}
    autonet.save(state, path)
    loaded = autonet.load(path)
    assert list(loaded) == ["a", "b", "c", "d", "z"]
    for key, value in state.items():
        assert loaded[key].dtype == value.dtype and loaded[key].shape == value.shape
        np.testing.assert_array_equal(loaded[key], value)


def test_files_written_by_the_package_load(tmp_path):
    path = tmp_path / "other.SAFETENSORS"            # the suffix in any case
    safetensors_numpy.save_file({"a": np.eye(2, dtype=np.float32)}, str(path))
    loaded = autonet.load(path)
    assert loaded["a"].dtype == np.float32
    np.testing.assert_array_equal(loaded["a"], np.eye(2))


@pytest.mark.parametrize("bad, what", [
    ({"nested": {"w": np.ones(2)}}, r"obj\['nested'\] is a dict"),
    ({"epoch": 3}, r"obj\['epoch'\] is a int"),
    ({"step": np.float64(3.0)}, r"obj\['step'\] is a float64"),
    ({"names": ["a"]}, r"obj\['names'\] is a list"),
    ({"text": np.array(["a"])}, "<U1 data"),
    ({0: np.ones(2)}, "keys must be strings"),
    ({"\ud800": np.ones(2)}, "UTF-8"),    # a lone surrogate: was the package's UnicodeEncodeError
    ({"__metadata__": np.ones(2)}, "reserved by the safetensors format"),
    ([np.ones(2)], "not a list"),
])
def test_save_refuses_anything_but_a_flat_dict_of_arrays_and_leaves_no_file(tmp_path, bad, what):
    path = tmp_path / "bad.safetensors"
    with pytest.raises(ValueError, match=what):
        autonet.save(bad, path)
    assert os.listdir(tmp_path) == []
    path.write_bytes(b"old")                         # an existing file stays as it was
    with pytest.raises(ValueError):
        autonet.save(bad, path)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["bad.safetensors"]


def test_load_refuses_a_file_that_is_not_safetensors_or_too_large(tmp_path):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        autonet.load(path)
    header = json.dumps({"w": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(4))   # as PyTorch writes bfloat16
    with pytest.raises(ValueError, match=r"holds BF16 data \(key 'w'\), which NumPy has no dtype for"):
        autonet.load(path)
    autonet.save({"w": np.ones(1000)}, path)
    with pytest.raises(ValueError, match="more than max_bytes=100"):
        autonet.load(path, max_bytes=100)


def test_without_the_package_the_error_names_the_extra(tmp_path):
    code = ("import sys; sys.modules['safetensors'] = None; import autonet, numpy\n"
            "try:\n    autonet.save({'w': numpy.ones(2)}, sys.argv[1])\n"
            "except ImportError as error:\n    print(error)\n")
    path = tmp_path / "w.safetensors"
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                            check=True)
    assert "pip install autonet[interop]" in result.stdout
    assert not path.exists()


def _torch_twins(torch):
    """(autonet module, PyTorch module of the same layout, an input) for each layer compared."""
    nn, rng = autonet.nn, np.random.default_rng(3)
    images = rng.standard_normal((2, 2, 5, 5))
    return [
        (nn.Conv2d(2, 3, 3, rng=0), torch.nn.Conv2d(2, 3, 3, dtype=torch.float64), images),
        (nn.LayerNorm(5), torch.nn.LayerNorm(5, dtype=torch.float64), rng.standard_normal((4, 5))),
        (nn.Embedding(7, 4, rng=0), torch.nn.Embedding(7, 4, dtype=torch.float64), np.array([[1, 6], [0, 3]])),
        (nn.BatchNorm2d(2), torch.nn.BatchNorm2d(2, dtype=torch.float64), images),
    ]


def _randomized(module, rng):
    """Every floating-point entry of the state changed, so a default value cannot pass."""
    state = {k: (np.asarray(v) + rng.uniform(0.5, 1.5, np.shape(v)) if np.asarray(v).dtype.kind == "f"
                 else np.asarray(v)) for k, v in module.state_dict().items()}
    module.load_state_dict(state)
    return module


def _outputs_agree(ours, theirs, x, torch):
    ours.eval()
    theirs.eval()
    with torch.no_grad():
        expected = theirs(torch.tensor(x)).numpy()
    np.testing.assert_allclose(ours(Tensor(x) if x.dtype.kind == "f" else x).data, expected,
                               rtol=1e-12, atol=1e-12)


def test_state_dicts_cross_to_pytorch_and_back_through_safetensors(tmp_path):
    """A layer's state_dict saved here loads into the PyTorch layer (safetensors.torch) and
    gives the same outputs; PyTorch's saved state loads back into autonet."""
    torch = pytest.importorskip("torch", reason="torch is not installed (the bench extra)")
    import safetensors.torch
    rng = np.random.default_rng(4)
    for ours, theirs, x in _torch_twins(torch):
        path = str(tmp_path / f"{type(ours).__name__}.safetensors")
        autonet.save(_randomized(ours, rng).state_dict(), path)
        theirs.load_state_dict(safetensors.torch.load_file(path))
        _outputs_agree(ours, theirs, x, torch)
        with torch.no_grad():                       # and back: PyTorch's state into autonet
            for parameter in theirs.parameters():
                parameter.add_(torch.tensor(rng.uniform(0.5, 1.5, tuple(parameter.shape))))
        safetensors.torch.save_file(theirs.state_dict(), path)
        ours.load_state_dict(autonet.load(path))
        _outputs_agree(ours, theirs, x, torch)


def test_a_linear_layers_state_dict_crosses_to_pytorch(tmp_path):
    """Contract v3's (out, in) Linear weight is PyTorch's: the file loads as it is."""
    torch = pytest.importorskip("torch", reason="torch is not installed (the bench extra)")
    import safetensors.torch
    ours = autonet.nn.Linear(3, 2, rng=0)
    assert ours.weight.shape == (2, 3)   # (out, in), as PyTorch's
    theirs = torch.nn.Linear(3, 2, dtype=torch.float64)
    path = str(tmp_path / "linear.safetensors")
    autonet.save(ours.state_dict(), path)
    theirs.load_state_dict(safetensors.torch.load_file(path))
    _outputs_agree(ours, theirs, np.random.default_rng(5).standard_normal((4, 3)), torch)


def test_a_file_under_the_other_formats_suffix_is_refused_saying_which_suffix(tmp_path):
    # both were refused with words for other cases ("a .npy file?", the package's header error)
    autonet.save({"w": np.ones(2)}, tmp_path / "w.safetensors")
    (tmp_path / "w.npz").write_bytes((tmp_path / "w.safetensors").read_bytes())
    with pytest.raises(ValueError, match="a safetensors file\\? give its name the .safetensors suffix"):
        autonet.load(tmp_path / "w.npz")
    autonet.save({"w": np.ones(2)}, tmp_path / "v.npz")
    (tmp_path / "v.safetensors").write_bytes((tmp_path / "v.npz").read_bytes())
    with pytest.raises(ValueError, match="a zip archive.*give its name the .npz suffix"):
        autonet.load(tmp_path / "v.safetensors")
    np.save(tmp_path / "a.npy", np.ones(2))
    with pytest.raises(ValueError, match="a .npy file: read it with numpy.load"):
        autonet.load(tmp_path / "a.npy")
