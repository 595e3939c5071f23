"""autonet.onnx.export: the examples' models run in ONNX Runtime and give autonet's outputs.

Every export is checked by onnx.checker (inside export) and run by ONNX Runtime
on the CPU; its outputs are compared with autonet's eager forward (eval mode):
float64 to 1e-9, float32 to 1e-5. Dynamic axes are run at other sizes than
the traced ones.
"""
import importlib.util
import math
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import autonet
import autonet.nn as nn
import autonet.nn.functional as F

onnx = pytest.importorskip("onnx")      # the 'onnx' extra; CI installs it (Makefile)
ort = pytest.importorskip("onnxruntime")

import autonet.onnx  # noqa: E402
from autonet.core import device as devices  # noqa: E402

TOLERANCE = {np.float64: 1e-9, np.float32: 1e-5, np.float16: 1e-2}
EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def example(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def eager(model, inputs):
    """autonet's outputs, flattened, in eval mode (the mode the export traces)."""
    training = model.training
    model.eval()
    try:
        with autonet.no_grad():
            out = model(*(autonet.Tensor(x, dtype=x.dtype) for x in inputs))
    finally:
        model.train(training)
    flat = []
    def walk(value):
        if isinstance(value, (tuple, list)):
            for part in value:
                walk(part)
        else:
            flat.append(value.data)
    walk(out)
    return flat


def run_onnx(path, inputs, names=None):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = names or [i.name for i in session.get_inputs()]
    return session.run(None, dict(zip(names, inputs)))


def check(model, inputs, path, dtype, others=(), **options):
    """Export on ``inputs``; ONNX Runtime equals autonet on them and on each of ``others``."""
    autonet.onnx.export(model, tuple(inputs), path, **options)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    tolerance = TOLERANCE[dtype]
    for case in (tuple(inputs),) + tuple(others):
        got, want = run_onnx(path, case), eager(model, case)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.dtype == w.dtype and g.shape == w.shape
            np.testing.assert_allclose(g, w, rtol=tolerance, atol=tolerance)


def normal(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


DTYPES = pytest.mark.parametrize("dtype", [np.float64, np.float32])
BATCH = {"input": {0: "batch"}}


# ------------------------------------------------------------------ the models
@DTYPES
def test_mlp_with_dynamic_batch(tmp_path, dtype):
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(4, 16, rng=rng), nn.ReLU(), nn.Linear(16, 16, rng=rng), nn.Tanh(),
                          nn.Linear(16, 8, rng=rng), nn.Sigmoid(), nn.Linear(8, 3, rng=rng),
                          nn.LogSoftmax()).astype(dtype)
    check(model, [normal(rng, (5, 4), dtype)], tmp_path / "mlp.onnx", dtype,
          others=[(normal(rng, (n, 4), dtype),) for n in (1, 9)], dynamic_axes=BATCH)


def cnn(rng, dtype):
    """examples/cnn_digits.py's network, with its BatchNorm statistics moved off 0 and 1, and an
    average pool with padding (not whole tiles) added."""
    model = example("cnn_digits").build(seed=1)
    model = nn.Sequential(nn.AvgPool2d(3, stride=1, padding=1), *model).astype(dtype)
    for layer in model:
        if isinstance(layer, nn.BatchNorm2d):
            layer.running_mean.data[...] = rng.standard_normal(layer.running_mean.shape)
            layer.running_var.data[...] = rng.uniform(0.5, 2.0, layer.running_var.shape)
            layer.weight.data[...] = rng.uniform(0.5, 1.5, layer.weight.shape)
    return model


@DTYPES
def test_the_examples_cnn_in_eval_mode_with_dynamic_batch(tmp_path, dtype):
    rng = np.random.default_rng(1)
    model = cnn(rng, dtype)
    check(model, [normal(rng, (4, 1, 8, 8), dtype)], tmp_path / "cnn.onnx", dtype,
          others=[(normal(rng, (n, 1, 8, 8), dtype),) for n in (1, 7)], dynamic_axes=BATCH)
    assert model.training   # left as it was


def test_the_examples_cnn_in_float16(tmp_path):
    """A float16 model is written in float16 (convolutions, BatchNorm, pools, Linear); ONNX
    Runtime rounds in its own order (some kernels compute in float32 inside), so the two agree
    to float16's precision, 1e-2, not bit for bit."""
    rng = np.random.default_rng(3)
    model = cnn(rng, np.float16)
    check(model, [normal(rng, (4, 1, 8, 8), np.float16)], tmp_path / "cnn16.onnx", np.float16,
          others=[(normal(rng, (2, 1, 8, 8), np.float16),)], dynamic_axes=BATCH)


@DTYPES
def test_convolution_and_pools_with_strides_dilation_and_padding(tmp_path, dtype):
    rng = np.random.default_rng(2)
    model = nn.Sequential(nn.Conv2d(2, 3, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), rng=rng),
                          nn.MaxPool2d(3, stride=2, padding=1), nn.ELU(), nn.Conv2d(3, 4, 1, rng=rng),
                          nn.AvgPool2d(2), nn.LeakyReLU(0.1), nn.Flatten()).astype(dtype)
    check(model, [normal(rng, (2, 2, 12, 9), dtype)], tmp_path / "conv.onnx", dtype,
          others=[(normal(rng, (3, 2, 12, 9), dtype),)], dynamic_axes=BATCH)


@DTYPES
def test_the_tiny_gpt_with_hand_written_attention(tmp_path, dtype):
    rng = np.random.default_rng(3)
    model = example("tiny_gpt").TinyGPT(13, width=16, heads=2, layers=2, block=8, seed=3).astype(dtype)
    indices = rng.integers(0, 13, (3, 8))
    check(model, [indices], tmp_path / "gpt.onnx", dtype,
          others=[(rng.integers(0, 13, (n, 8)),) for n in (1, 5)], dynamic_axes={"input": {0: "batch"}})


class Encoder(nn.Module):
    """Embedding, a causal TransformerEncoderLayer (nn.MultiheadAttention inside), a head."""

    def __init__(self, rng, activation="gelu"):
        super().__init__()
        self.embed = nn.Embedding(11, 8, rng=rng)
        self.layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.1, activation=activation,
                                                batch_first=True, norm_first=True, rng=rng)
        self.head = nn.Linear(8, 11, rng=rng)

    def forward(self, indices):
        x = self.embed(indices)
        length = indices.shape[1]
        mask = np.triu(np.full((length, length), -np.inf), k=1)
        return self.head(self.layer(x, src_mask=mask.astype(x.dtype)))


@DTYPES
def test_multihead_attention_layers_with_a_causal_mask(tmp_path, dtype):
    rng = np.random.default_rng(4)
    # exact GELU needs Erf, which ONNX Runtime lacks in float64 (docs/interop.md)
    model = Encoder(rng, "gelu" if dtype == np.float32 else "relu").astype(dtype)
    check(model, [rng.integers(0, 11, (2, 6))], tmp_path / "encoder.onnx", dtype,
          others=[(rng.integers(0, 11, (4, 6)),)], dynamic_axes=BATCH)


class Attention(nn.Module):
    """scaled_dot_product_attention on heads, causal, and a tanh-GELU MLP."""

    def __init__(self, rng):
        super().__init__()
        self.qkv, self.mlp = nn.Linear(8, 24, rng=rng), nn.Sequential(nn.GELU("tanh"), nn.Linear(24, 4, rng=rng))

    def forward(self, x):
        n, length, _ = x.shape
        q, k, v = (part.reshape(n, length, 2, 4).transpose(0, 2, 1, 3) for part in self.qkv(x).split(3, axis=-1))
        mixed = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.mlp(autonet.concatenate([mixed.transpose(0, 2, 1, 3).reshape(n, length, 8), x, x], axis=-1))


@DTYPES
def test_scaled_dot_product_attention_with_dynamic_batch_and_length(tmp_path, dtype):
    rng = np.random.default_rng(5)
    model = Attention(rng).astype(dtype)
    axes = {"input": {0: "batch", 1: "length"}}
    check(model, [normal(rng, (2, 5, 8), dtype)], tmp_path / "sdpa.onnx", dtype,
          others=[(normal(rng, (n, t, 8), dtype),) for n, t in ((1, 3), (4, 9))], dynamic_axes=axes)


def test_scaled_dot_product_attention_keeps_float32():
    # its default scale was a NumPy float64 scalar, which promoted float32 scores to float64
    q = np.ones((1, 2, 4), dtype=np.float32)
    assert F.scaled_dot_product_attention(q, q, q).dtype == np.float32


class Sequence(nn.Module):
    """nn.LSTM (two layers, batch first), its last step through a Linear; returns (out, (h, c))."""

    def __init__(self, rng):
        super().__init__()
        self.lstm = nn.LSTM(3, 5, num_layers=2, batch_first=True, rng=rng)
        self.head = nn.Linear(5, 2, rng=rng)

    def forward(self, x):
        out, state = self.lstm(x)
        return self.head(out[:, -1]), state


@DTYPES
def test_an_lstm_unrolled_over_a_fixed_length_with_dynamic_batch(tmp_path, dtype):
    rng = np.random.default_rng(6)
    model = Sequence(rng).astype(dtype)
    check(model, [normal(rng, (4, 6, 3), dtype)], tmp_path / "lstm.onnx", dtype,
          others=[(normal(rng, (2, 6, 3), dtype),)], dynamic_axes=BATCH,
          output_names=["logits", "h", "c"])
    assert [o.name for o in onnx.load(str(tmp_path / "lstm.onnx")).graph.output] == ["logits", "h", "c"]


class Activations(nn.Module):
    """nn's activations side by side on one Linear's output (large values too: thresholds)."""

    def __init__(self, rng):
        super().__init__()
        self.linear = nn.Linear(3, 5, rng=rng)
        self.layers = nn.ModuleList([
            nn.Softplus(), nn.Softplus(beta=2.0, threshold=3.0), nn.Hardtanh(-0.5, 0.8), nn.Hardswish(),
            nn.CELU(0.7), nn.LogSigmoid(), nn.SiLU(), nn.Mish(), nn.ReLU6(), nn.Softsign(), nn.Tanhshrink(),
            nn.Hardsigmoid(), nn.SELU(), nn.ELU(0.3), nn.LeakyReLU(0.2), nn.GELU("tanh"), nn.Softmax(axis=-1)])

    def forward(self, x):
        y = self.linear(x) * 10.0
        return autonet.concatenate([layer(y) for layer in self.layers] + [autonet.logsumexp(y, axis=1, keepdims=True),
                                   autonet.broadcast_to(autonet.logsumexp(y, axis=(0, 1))[None, None], (y.shape[0], 1))], axis=1)


@DTYPES
def test_activations(tmp_path, dtype):
    rng = np.random.default_rng(12)
    model = Activations(rng).astype(dtype)
    check(model, [normal(rng, (6, 3), dtype)], tmp_path / "act.onnx", dtype)


class Inverses(nn.Module):
    def forward(self, x):
        unit = x.tanh()
        return autonet.arcsin(unit) - autonet.arccos(unit) * autonet.arctan(x) + autonet.erf(x)


def test_exact_gelu_erf_and_inverse_trigonometry_in_float32(tmp_path):
    # ONNX Runtime has no float64 Erf, Asin, Acos or Atan kernels (docs/interop.md): float32 here
    rng = np.random.default_rng(7)
    model = nn.Sequential(nn.Linear(3, 6, rng=rng), nn.GELU(), nn.LayerNorm(6), Inverses()).astype(np.float32)
    check(model, [normal(rng, (4, 3), np.float32)], tmp_path / "gelu.onnx", np.float32)
    autonet.onnx.export(model.astype(np.float64), (normal(rng, (4, 3), np.float64),), tmp_path / "gelu64.onnx")
    onnx.checker.check_model(onnx.load(str(tmp_path / "gelu64.onnx")), full_check=True)   # valid ONNX


@DTYPES
def test_parameters_and_buffers_are_initializers_named_by_state_dict_keys(tmp_path, dtype):
    rng = np.random.default_rng(8)
    model = cnn(rng, dtype)
    autonet.onnx.export(model, (normal(rng, (2, 1, 8, 8), dtype),), tmp_path / "m.onnx")
    initializers = {i.name: onnx.numpy_helper.to_array(i) for i in onnx.load(str(tmp_path / "m.onnx")).graph.initializer}
    for key, value in model.state_dict().items():
        if "num_batches_tracked" not in key:
            np.testing.assert_array_equal(initializers[key], value)


def test_several_inputs_and_opsets(tmp_path):
    rng = np.random.default_rng(9)

    class Pair(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(3, 3, rng=rng)

        def forward(self, a, b):
            return self.linear(a) * b.exp() - (a @ b.T).sum(axis=1, keepdims=True).abs().sqrt()

    inputs = [rng.standard_normal((4, 3)), rng.standard_normal((4, 3))]
    for opset in autonet.onnx.OPSETS:
        check(Pair(), inputs, tmp_path / f"pair{opset}.onnx", np.float64, opset=opset)
        assert onnx.load(str(tmp_path / f"pair{opset}.onnx")).opset_import[0].version == opset
    assert autonet.onnx.DEFAULT_OPSET in autonet.onnx.OPSETS


# ------------------------------------------------------------------ refusals
class Cube(autonet.Function):
    @staticmethod
    def forward(ctx, x):
        return x ** 3

    @staticmethod
    def backward(ctx, grad):
        return grad


class WithCube(nn.Module):
    def forward(self, x):
        return Cube.apply(x) + 1.0


def refused(error, match, path, *args, **options):
    """The export raises; no file at ``path``, nor a temporary beside it."""
    before = set(path.parent.iterdir())
    with pytest.raises(error, match=match):
        autonet.onnx.export(*args, path, **options)
    assert not os.path.exists(path) and set(path.parent.iterdir()) == before


def test_an_op_without_a_mapping_is_named_and_no_file_is_left(tmp_path):
    x = np.ones((2, 3))
    refused(ValueError, "Cube has no ONNX mapping", tmp_path / "m.onnx", WithCube(), (x,))
    class Products(nn.Module):
        def forward(self, x):
            return autonet.cumprod(x, axis=1)

    refused(ValueError, r"the op cumprod \(Cumprod\) has no ONNX mapping", tmp_path / "m.onnx", Products(), (x,))

    class Dropping(nn.Module):   # dropout applied as an op whatever the mode: random
        def forward(self, x):
            return F.dropout(x, 0.5, training=True, rng=0)

    refused(ValueError, r"the op dropout \(Dropout\) has no ONNX mapping", tmp_path / "m.onnx", Dropping(), (x,))


def test_refusals_of_bad_arguments_leave_no_file(tmp_path):
    model, x, path = nn.Linear(3, 2, rng=0), np.ones((2, 3)), tmp_path / "m.onnx"
    refused(TypeError, "example_inputs must be a tuple", path, model, [x])
    refused(TypeError, "example_inputs must be a tuple", path, model, x)
    refused(TypeError, r"example_inputs\[0\]", path, model, ("text",))
    refused(ValueError, "opset must be one of", path, model, (x,), opset=7)
    refused(ValueError, "opset must be one of", path, model, (x,), opset=99)
    refused(ValueError, "no input or output", path, model, (x,), dynamic_axes={"x": {0: "batch"}})
    refused(ValueError, "names axes", path, model, (x,), dynamic_axes={"input": {2: "batch"}})
    refused(TypeError, "must map axes", path, model, (x,), dynamic_axes={"input": {"0": "batch"}})
    refused(ValueError, "input_names has 2 names", path, model, (x,), input_names=["a", "b"])
    refused(ValueError, "names a parameter", path, model, (x,), input_names=["weight"])
    refused(TypeError, "autonet.nn.Module", path, lambda t: t, (x,))


def test_a_forward_that_reads_values_is_refused(tmp_path):
    class Branchy(nn.Module):
        def forward(self, x):
            return x * 2.0 if float(x.sum()) > 0 else x

    refused(ValueError, r"reads a tensor's values \(float\(\)\)", tmp_path / "m.onnx", Branchy(), (np.ones(3),))


def test_a_dynamic_axis_the_forward_cannot_follow_is_refused(tmp_path):
    class Fixed(nn.Module):   # a constant sized by the batch, made outside any op
        def forward(self, x):
            return x + autonet.Tensor(np.ones(x.shape))

    class Offset(nn.Module):  # a reshape by batch + 1: no product of sizes
        def forward(self, x):
            return autonet.pad(x, ((0, 1), (0, 0))).reshape(x.shape[0] + 1, 3)

    x = np.ones((2, 3))
    refused(ValueError, "the constant constant:0 it makes", tmp_path / "m.onnx", Fixed(), (x,), dynamic_axes=BATCH)
    refused(ValueError, "pad .* change with the dynamic axes", tmp_path / "m.onnx", Offset(), (x,),
            dynamic_axes=BATCH)
    check(Offset(), [x], tmp_path / "fixed.onnx", np.float64)   # fine with a fixed batch


def test_a_model_in_train_mode_is_exported_as_in_eval_mode_and_left_training(tmp_path):
    rng = np.random.default_rng(10)
    model = nn.Sequential(nn.Linear(3, 4, rng=rng), nn.Dropout(0.5, rng=rng), nn.BatchNorm1d(4))
    model[2].eval()                 # a submodule already in eval mode stays so
    before = model.state_dict()
    autonet.onnx.export(model, (rng.standard_normal((5, 3)),), tmp_path / "m.onnx")
    assert [m.training for m in model.modules()] == [True, True, True, False]
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key])
    x = rng.standard_normal((5, 3))
    np.testing.assert_allclose(run_onnx(tmp_path / "m.onnx", [x])[0], eager(model, [x])[0], rtol=1e-9, atol=1e-9)


@DTYPES
def test_batch_statistics_used_in_the_forward_itself(tmp_path, dtype):
    """``F.batch_norm(..., training=True)`` written into a forward normalizes by the batch's own
    statistics whatever the module's mode: exported as such (its BatchStatistics too)."""
    class BatchNormalized(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(np.array([1.5, -0.5, 2.0], dtype=dtype))

        def forward(self, x):
            return F.batch_norm(x, None, None, self.weight, None, training=True)

    rng = np.random.default_rng(12)
    check(BatchNormalized(), [normal(rng, (4, 3, 5), dtype)], tmp_path / "bn.onnx", dtype,
          others=[(normal(rng, (7, 3, 5), dtype),)], dynamic_axes=BATCH)


def test_import_autonet_does_not_import_onnx():
    code = "import sys, autonet, autonet.onnx; print('onnx' in sys.modules, 'onnxruntime' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


def test_missing_onnx_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)   # import onnx now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'autonet\[onnx\]'"):
        autonet.onnx.export(nn.Linear(2, 2, rng=0), (np.ones((1, 2)),), tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())


def test_values_taken_out_of_the_graph_are_refused(tmp_path):
    class Baked(nn.Module):   # x.data leaves autonet's ops: the graph would keep this batch's values
        def forward(self, x):
            return x * autonet.Tensor(x.data[:1])

    class Sliced(nn.Module):  # a slice bound read from the values
        def forward(self, x):
            return x[: int(np.argmax(x.data)) + 1]

    class Branchy(nn.Module):  # Python decides on the values
        def forward(self, x):
            return x.exp() if x.data[0] > 0 else x.tanh()

    x = np.array([3.0, 1.0, -2.0])
    refused(ValueError, "depends on the input values outside autonet's ops", tmp_path / "m.onnx", Baked(), (x,))
    refused(ValueError, r"getitem\) gets other settings", tmp_path / "m.onnx", Sliced(), (x,))
    refused(ValueError, "step t:0 is exp, then tanh", tmp_path / "m.onnx", Branchy(), (x,))


class Everything(nn.Module):
    """Every mapped op at least once (indexing in its forms), several outputs."""

    def __init__(self, rng):
        super().__init__()
        self.scale = nn.Parameter(rng.uniform(0.5, 1.5, (3, 4)))

    def forward(self, x, index):
        a = autonet
        y = x * self.scale                                               # (N, 3, 4)
        unit = y.tanh()
        waves = (-(y.sin() + y.cos()).abs().sqrt() + a.tan(unit) + a.sinh(unit) * a.cosh(unit)
                 + a.reciprocal(y.exp() + 1.0)
                 + (y.abs() + 1.0).log() + (y ** 2.0) / 3.0 - y.sigmoid() + y.relu())
        bounded = a.clip(y, -0.5, 0.5) + a.clip(y, self.scale * -0.1, None) + a.where(np.arange(4) % 2 == 0, y, 2.0 * y)
        extremes = a.maximum(y, unit) - a.minimum(y, 0.25)
        mixed = a.einsum("nij,kj,nkj->ni", y, self.scale, unit) + (y @ self.scale.T).softmax(axis=1).sum(axis=2)
        pieces = a.stack([y[:, 0], y[:, -1, ::-1], a.broadcast_to(y[:, 1, 1:3].mean(axis=-1, keepdims=True), (y.shape[0], 4))],
                         axis=1)                                           # (N, 3, 4)
        picked = y[:, [[2, 0], [1, 1]]] + y[:, None, 1, :].transpose().transpose()[:, :, None] - y[..., ::-2].sum(axis=(1, 2))[:, None, None, None]
        reduced = (a.pad(y, ((0, 0), (1, 2), (0, 1)), constant_values=0.5).prod(axis=(1, 2))
                   + y.max(axis=1).sum(axis=-1) - y.min() + a.cumsum(y, axis=2)[:, 2, 3] + a.tril(y, -1).sum(axis=(1, 2))
                   + a.triu(y).sum(axis=(1, 2)) + y.sum(axis=())[:, 0, 0] + y.var(axis=(1, 2))
                   + y.std(axis=(0, 2), ddof=1).sum() + y.var() - y.std(axis=1, keepdims=True)[:, 0, 0]
                   + a.norm(y, axis=(1, 2)) + a.norm(y, 3, axis=1).sum(axis=-1) + a.norm(y, 0.5, axis=-1).sum(axis=-1))
        typed = (y * 3.0).astype(np.float16).astype(x.dtype) + y.log_softmax(axis=-1)
        joined = a.concatenate([waves, bounded, extremes, pieces, typed], axis=1).reshape(y.shape[0], -1)
        chosen = a.take_along_axis(y, index, axis=2) + a.take_along_axis(y, [[[1], [0], [3]]], axis=-1)
        empty = y[:0].reshape(3, 0)   # a real 0 in a shape (ONNX reads 0 as "keep" unless told)
        return joined, mixed, picked, reduced, chosen, empty


@DTYPES
def test_every_mapped_op_against_autonet(tmp_path, dtype):
    rng = np.random.default_rng(11)
    model = Everything(rng).astype(dtype)
    index = rng.integers(-4, 4, (1, 3, 2))   # taken along the last axis; NumPy wraps negatives
    check(model, [normal(rng, (2, 3, 4), dtype), index], tmp_path / "all.onnx", dtype,
          others=[(normal(rng, (5, 3, 4), dtype), rng.integers(-4, 4, (1, 3, 2)))],
          dynamic_axes={"input_0": {0: "batch"}})


def test_in_place_updates_are_followed(tmp_path):
    class InPlace(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(3, 3, rng=0)

        def forward(self, x):
            y = self.linear(x)
            before = y * 1.0     # reads y before the writes
            y += 1.0
            y *= x
            return y - before

    rng = np.random.default_rng(13)
    check(InPlace(), [rng.standard_normal((4, 3))], tmp_path / "m.onnx", np.float64,
          others=[(rng.standard_normal((2, 3)),)], dynamic_axes=BATCH)


def test_a_model_on_a_device_is_traced_there_and_written_from_the_host(tmp_path):
    import device_double   # tests/device_double.py: a CuPy-like array that refuses host conversion
    rng = np.random.default_rng(14)
    x = rng.standard_normal((4, 1, 8, 8))
    host = cnn(rng, np.float64)
    with device_double.default_device():
        model = cnn(np.random.default_rng(14), np.float64)
        model.load_state_dict(host.state_dict())
        assert devices.is_foreign(model[1].weight.data)
        autonet.onnx.export(model, (autonet.Tensor(x),), tmp_path / "m.onnx", dynamic_axes=BATCH)
    np.testing.assert_allclose(run_onnx(tmp_path / "m.onnx", [x[:3]])[0], eager(host, [x[:3]])[0], rtol=1e-9, atol=1e-9)


def test_dynamic_axes_in_list_form_and_named_output_axes(tmp_path):
    rng = np.random.default_rng(15)
    model = nn.Sequential(nn.Linear(3, 2, rng=rng), nn.Tanh())
    autonet.onnx.export(model, (rng.standard_normal((4, 3)),), tmp_path / "m.onnx", input_names=["x"],
                        output_names=["y"], dynamic_axes={"x": [0], "y": {0: "rows"}})
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == ["x_dynamic_axes_1", 3]
    assert session.get_outputs()[0].shape == ["rows", 2]
    x = rng.standard_normal((7, 3))
    np.testing.assert_allclose(session.run(None, {"x": x})[0], eager(model, [x])[0], rtol=1e-9, atol=1e-9)
    refused(ValueError, "follows no dynamic input axis", tmp_path / "n.onnx", model, (x,),
            dynamic_axes={"output": {1: "width"}})
    refused(ValueError, r"dynamic_axes\['output'\] names axes \[2\]", tmp_path / "n.onnx", model, (x,),
            dynamic_axes={"output": {2: "width"}})


def test_numbers_that_follow_the_batch_size(tmp_path):
    class Average(nn.Module):   # divides by the batch size, a Python int in the trace
        def forward(self, x):
            return x.sum(axis=0) / x.shape[0] + x * (2 * x.shape[0])

    rng = np.random.default_rng(19)
    check(Average(), [rng.standard_normal((3, 2))], tmp_path / "m.onnx", np.float64,
          others=[(rng.standard_normal((n, 2)),) for n in (1, 7)], dynamic_axes=BATCH)


class Layers(nn.Module):
    """The layers docs/interop.md lists beyond the examples: grouped and 1-d convolutions, pools
    with ceil_mode and count_include_pad=False, GroupNorm, RNN and GRU, and attention with a
    boolean mask that leaves one query nothing to attend to."""

    def __init__(self, rng):
        super().__init__()
        self.grouped = nn.Conv2d(4, 6, 3, padding=1, groups=2, rng=rng)
        self.pool = nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
        self.maxpool = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.norm = nn.GroupNorm(3, 6)
        self.conv1d = nn.Conv1d(6, 4, 2, stride=1, dilation=2, rng=rng)
        self.pool1d = nn.MaxPool1d(2)
        self.rnn = nn.RNN(4, 3, batch_first=True, rng=rng)
        self.gru = nn.GRU(3, 4, batch_first=True, rng=rng)

    def forward(self, x):
        x = self.norm(self.grouped(x))                      # (N, 6, 5, 5)
        x = self.maxpool(self.pool(x))                      # (N, 6, 2, 2)
        x = self.pool1d(self.conv1d(x.reshape(x.shape[0], 6, 4)).relu())   # (N, 4, 1)
        seq = autonet.concatenate([x, x * 2.0, x - 1.0], axis=2).transpose(0, 2, 1)   # (N, 3, 4)
        out, _ = self.gru(self.rnn(seq)[0])                 # (N, 3, 4)
        keep = np.array([[True, False, True], [False, False, False], [True, True, True]])
        attended = F.scaled_dot_product_attention(out, out, out, attn_mask=keep)
        return attended


@DTYPES
def test_more_layers_grouped_convolution_ceil_pools_group_norm_rnn_gru_and_masks(tmp_path, dtype):
    rng = np.random.default_rng(16)
    model = Layers(rng).astype(dtype)
    check(model, [normal(rng, (3, 4, 5, 5), dtype)], tmp_path / "layers.onnx", dtype,
          others=[(normal(rng, (1, 4, 5, 5), dtype),)], dynamic_axes=BATCH)
    assert not np.any(eager(model, [normal(rng, (1, 4, 5, 5), dtype)])[0][:, 1])   # the masked row: zeros


@pytest.mark.parametrize("kind, match", [
    ("GRU", "dynamic axis 'time' .*runs [0-9]+ ops, then [0-9]+"),   # one chain of ops per step
    ("LSTM", "lstm_layer .*change with the dynamic axes' sizes.*export with those axes fixed"),   # one op
])
def test_a_recurrent_layer_refuses_a_dynamic_time_axis(tmp_path, kind, match):
    rng = np.random.default_rng(17)
    model = getattr(nn, kind)(3, 5, batch_first=True, rng=rng)
    refused(ValueError, match, tmp_path / "m.onnx", model, (rng.standard_normal((2, 4, 3)),),
            dynamic_axes={"input": {1: "time"}})


def test_the_tiny_gpt_with_dynamic_batch_and_length(tmp_path):
    # positions.weight[:T] and mask[:T, :T] slice by the length: bounds read from the input's shape
    rng = np.random.default_rng(18)
    model = example("tiny_gpt").TinyGPT(13, width=16, heads=2, layers=1, block=8, seed=3)
    check(model, [rng.integers(0, 13, (2, 6))], tmp_path / "gpt.onnx", np.float64,
          others=[(rng.integers(0, 13, (n, t)),) for n, t in ((1, 8), (3, 2), (4, 6))],
          dynamic_axes={"input": {0: "batch", 1: "length"}})


def test_the_notebook_models(tmp_path):
    rng = np.random.default_rng(20)
    for model in (autonet.models.Perceptron(rng=1), autonet.models.TwoLayerNNClassifier(rng=2)):
        check(model, [rng.integers(0, 2, (4, 3)).astype(np.float64)], tmp_path / "notebook.onnx", np.float64,
              others=[(rng.standard_normal((9, 3)),)], dynamic_axes=BATCH)
