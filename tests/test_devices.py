"""Devices: the same formulas on a foreign array type, checked with a CuPy-like double.

``device_double.DeviceArray`` refuses implicit conversion to NumPy and is not
an ``np.ndarray``, as CuPy's arrays; its values are NumPy's, so every result
on it must equal the CPU's bit for bit. A forgotten host conversion raises.
"""
import numpy as np
import pytest

import autonet
import autonet.nn as nn
import autonet.nn.functional as F
from autonet import Tensor
from autonet.optim import SGD, Adam, AdamW

import device_double  # noqa: F401 - registers the double:0 device

DEVICE = "double:0"


def _bits(array):
    host = autonet.core.device.to_host(array)
    return host.dtype.str, host.shape, host.tobytes()


def _on(device, *arrays, requires_grad=True):
    return [Tensor(a, requires_grad=requires_grad).to(device) if device != "cpu"
            else Tensor(a, requires_grad=requires_grad) for a in arrays]


def _same_everywhere(function, *arrays, labels=None):
    """``function`` on the CPU and on the double: equal values and gradients."""
    results = {}
    for device in ("cpu", DEVICE):
        leaves = [Tensor(a, requires_grad=True) for a in arrays]
        inputs = [leaf.to(device) for leaf in leaves]
        out = function(*inputs)
        assert out.device == device
        out.sum().backward()
        results[device] = [_bits(out.data)] + [_bits(leaf.grad) for leaf in leaves]
        assert all(leaf.device == "cpu" for leaf in leaves)     # gradients come back through .to
    assert results["cpu"] == results[DEVICE]


RNG = np.random.default_rng(0)
A, B, W = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 3)), RNG.normal(size=(3, 5))
OPS = {
    "arithmetic": (lambda a, b: (a + b) * a / (b * b + 1.0) - a ** 2, A, B),
    "broadcast": (lambda a, b: a * b[0] + b.sum(axis=0, keepdims=True), A, B),
    "unary": (lambda a: a.exp().log1p() + a.tanh() + a.sigmoid() + a.relu() + a.abs().sqrt()
              + a.sin() + a.cos() + a.gelu("tanh") + a.silu() + a.softplus() + a.elu(), A),
    "reductions": (lambda a: a.mean(axis=0) * a.max(axis=1).sum() + a.var() + a.logsumexp(axis=1).sum(), A),
    "softmax": (lambda a: a.softmax(axis=1) * a.log_softmax(axis=0), A),
    "matmul": (lambda a, w: a @ w, A, W),
    "shapes": (lambda a: a.T.reshape(12)[::-1].reshape(2, 6)[:, 1:] * 2.0, A),
    "indexing": (lambda a: a[np.array([0, 2, 2])] * 1.0, A),
    "where_clip": (lambda a, b: autonet.where(a.data > 0, a, b).clip(-0.5, 0.5), A, B),
    "concat": (lambda a, b: autonet.concatenate([a, b], axis=1) * 1.0, A, B),
    "more_unary": (lambda a: a.leaky_relu(0.1) + a.erf() + a.gelu() + a.square() + a.expm1()
                   + autonet.maximum(a, 0.2) + autonet.minimum(a, -0.1), A),
    "more_reductions": (lambda a: a.prod(axis=0).sum() + a.cumsum(axis=1).sum() + a.std(axis=0).sum()
                        + a.norm(axis=1).sum() + a.logsumexp(), A),
    "more_shapes": (lambda a, b: autonet.stack([a, b]).moveaxis(0, 2).squeeze().expand_dims(0).pad(1)
                    * 1.0 + autonet.repeat(a, 2, axis=1).sum() + a.swapaxes(0, 1).sum(), A, B),
    "products": (lambda a, b, w: autonet.einsum("ij,jk->ik", a, w) + autonet.tensordot(a, b, ([0], [0])).sum()
                 + autonet.dot(a[0], b[0]) + autonet.outer(a[0], b[1]).sum() + autonet.trace(a @ b.T), A, B, W),
    "losses": (lambda a, b: F.binary_cross_entropy(a.sigmoid(), b.sigmoid())
               + F.binary_cross_entropy_with_logits(a, b.sigmoid()) + F.l1_loss(a, b)
               + F.huber_loss(a, b, delta=0.5)
               + F.nll_loss(a.log_softmax(), Tensor([0, 1, 2, 0], dtype=np.int64, device=a.device))
               + F.mse_loss(a, b), A, B),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_ops_on_the_device_equal_the_cpu_bit_for_bit(name):
    function, *arrays = OPS[name]
    _same_everywhere(function, *arrays)


def test_layers_losses_and_optimizers_train_identically_on_the_device():
    histories = {}
    for device in ("cpu", DEVICE):
        rng = np.random.default_rng(1)
        model = nn.Sequential(nn.Linear(3, 8, rng=rng), nn.LayerNorm(8), nn.GELU(), nn.Linear(8, 4, rng=rng)).to(device)
        x = Tensor(rng.normal(size=(6, 3))).to(device)
        labels = Tensor(rng.integers(0, 4, 6)).to(device)
        target = Tensor(rng.normal(size=(6, 4))).to(device)
        losses = []
        for optimizer in (SGD(model.parameters(), lr=0.1, momentum=0.9), Adam(model.parameters()),
                          AdamW(model.parameters())):
            for _ in range(3):
                loss = F.cross_entropy(model(x), labels) + F.mse_loss(model(x), target)
                optimizer.zero_grad()
                loss.backward()
                autonet.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                losses.append(loss.item())
        histories[device] = (losses, [_bits(p.data) for p in model.parameters()])
        assert all(p.device == device for p in model.parameters())
    assert histories["cpu"] == histories[DEVICE]


def _regression_step(model):
    """An SGD step of ``model`` on mean squared error: ``step(x, y) -> loss``."""
    optimizer = SGD(model.parameters(), lr=0.1)

    def step(x, y):
        loss = F.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    return step


def test_a_compiled_step_replays_on_the_device():
    rng = np.random.default_rng(2)
    model = nn.Linear(3, 2, rng=rng).to(DEVICE)
    compiled = autonet.compile(_regression_step(model))
    for _ in range(3):
        x, y = Tensor(rng.normal(size=(4, 3))).to(DEVICE), Tensor(rng.normal(size=(4, 2))).to(DEVICE)
        assert compiled(x, y).device == DEVICE
    assert model.weight.device == DEVICE


def test_devices_do_not_mix_and_conversions_are_explicit():
    on_device = Tensor([1.0, 2.0]).to(DEVICE)
    with pytest.raises(RuntimeError, match="different devices"):
        on_device + Tensor([1.0, 2.0])
    with pytest.raises(TypeError, match="numpy()"):
        np.asarray(on_device)
    assert on_device.numpy().tolist() == [1.0, 2.0] and isinstance(on_device.numpy(), np.ndarray)
    assert on_device.item if on_device.size == 2 else True
    assert (on_device * 2.0).device == DEVICE and on_device.to("cpu").device == "cpu"
    assert Tensor(on_device).device == DEVICE
    with pytest.raises(RuntimeError, match="unknown device 'tpu'"):
        Tensor([1.0]).to("tpu")
    with pytest.raises(RuntimeError, match=r"autonet\[cuda\]|'cuda'"):
        if not autonet.cuda.is_available():
            Tensor([1.0]).to("cuda")
        else:
            raise RuntimeError("'cuda' is available here")
    state = nn.Linear(2, 2, rng=0).to(DEVICE).state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())   # saved on the host


def test_convolution_pooling_normalization_dropout_and_embeddings_on_the_device():
    rng = np.random.default_rng(3)
    images = rng.normal(size=(4, 2, 6, 6))
    tokens = rng.integers(0, 7, (4, 5))
    results = {}
    for device in ("cpu", DEVICE):
        r = np.random.default_rng(4)
        cnn = nn.Sequential(nn.Conv2d(2, 3, 3, padding="same", rng=r), nn.BatchNorm2d(3), nn.ReLU(),
                            nn.MaxPool2d(2), nn.AvgPool2d(3, stride=1, padding=1), nn.Flatten(),
                            nn.Dropout(0.3, rng=r), nn.Linear(27, 2, rng=r)).to(device)
        embed = nn.Embedding(7, 3, rng=r).to(device)
        out = cnn(Tensor(images).to(device)).sum() + (embed(Tensor(tokens, dtype=np.int64, device=device)) ** 2).sum()
        out.backward()
        results[device] = [_bits(out.data)] + [_bits(p.grad) for p in cnn.parameters()] + [
            _bits(embed.weight.grad)] + [_bits(b.data) for b in cnn.buffers()]
    assert results["cpu"] == results[DEVICE]


# ------------------------------------------------------------------ random steps, CPU vs device
from hypothesis import given, settings, strategies as st  # noqa: E402

import test_compile_fuzz as fuzz  # noqa: E402


def _moved(world, arguments):
    """The fuzzer's world and arguments, on the double."""
    for name in ("W", "b"):
        world[name].data = autonet.core.device.to_device(world[name].data, DEVICE)
    x, array, idx, k, flag, leaf = arguments
    return world, (Tensor(x.data, device=DEVICE), autonet.core.device.to_device(array, DEVICE),
                   autonet.core.device.to_device(idx, DEVICE),
                   k, flag, Tensor(leaf.data, requires_grad=True, device=DEVICE))


def _run(program, optimizer, clip, calls, device):
    world = fuzz._world(optimizer)
    step = fuzz._step(program, world, clip, False)
    outcomes = []
    for drawn in calls:
        arguments = fuzz._arguments(drawn)
        if device != "cpu":
            world, arguments = _moved(world, arguments)
        loss, error = fuzz._call(step, arguments)
        if error is not None:
            outcomes.append(type(error).__name__)
            break
        outcomes.append([_bits(loss.data), None if arguments[-1].grad is None else _bits(arguments[-1].grad)]
                        + [(_bits(world[n].data), None if world[n].grad is None else _bits(world[n].grad))
                           for n in ("W", "b")])
    return outcomes


@settings(max_examples=max(150, settings.default.max_examples))
@given(program=st.lists(fuzz.instruction, min_size=1, max_size=8),
       optimizer=st.sampled_from(["sgd", "momentum", "adam", "none"]),
       clip=st.sampled_from(["none", "norm", "value"]),
       calls=st.lists(fuzz.call_arguments, min_size=2, max_size=3))
def test_random_training_steps_on_the_device_equal_the_cpu_bit_for_bit(program, optimizer, clip, calls):
    assert _run(program, optimizer, clip, calls, DEVICE) == _run(program, optimizer, clip, calls, "cpu")


# ------------------------------------------------------------------ NumPy's namespace on the device
import test_numpy_protocol as protocol  # noqa: E402


def _graph_result(function, call, device):
    """``function`` applied to the protocol test's inputs on ``device``; None unless a Tensor."""
    leaves = protocol._inputs()
    inputs = [leaf.to(device) for leaf in leaves]
    try:
        with np.errstate(all="ignore"):
            result = function(*protocol.CALLS[call](*inputs))
    except Exception:   # noqa: BLE001 - refused or not applicable: compared by the CPU test
        return None
    if not isinstance(result, Tensor):
        return None
    assert result.device == device
    if result.requires_grad:    # (piecewise-constant functions give constants)
        with np.errstate(all="ignore"):
            result.sum().backward()
    return [_bits(result.data)] + [None if leaf.grad is None else _bits(leaf.grad) for leaf in leaves]


@pytest.mark.parametrize("call", sorted(protocol.CALLS))
@pytest.mark.parametrize("name,function", protocol.FUNCTIONS, ids=[n for n, _ in protocol.FUNCTIONS])
def test_every_numpy_function_in_the_graph_runs_on_the_device_as_on_the_cpu(name, function, call):
    expected = _graph_result(function, call, "cpu")
    if expected is not None:
        assert _graph_result(function, call, DEVICE) == expected


def test_to_the_same_device_is_the_tensor_itself_and_cuda_needs_cupy():
    t = Tensor([1.0, 2.0])
    assert t.to("cpu") is t and t.to(DEVICE).to(DEVICE).device == DEVICE
    assert isinstance(autonet.cuda.is_available(), bool)


def test_fresh_gradients_on_the_device_are_handed_over_without_copies(monkeypatch):
    copies = []
    copy = device_double.DeviceArray.copy
    monkeypatch.setattr(device_double.DeviceArray, "copy", lambda self: copies.append(1) or copy(self))
    x = Tensor(np.ones((3, 3)), requires_grad=True, device=DEVICE)
    (x * 2.0).sum().backward()           # mul's fresh result reaches only x: no copy
    assert copies == []
    y, z = (Tensor([1.0], requires_grad=True, device=DEVICE) for _ in range(2))
    (y + z).sum().backward()             # add hands one array to both: one of them copies
    assert len(copies) == 1 and y.grad is not z.grad
    seed = autonet.core.device.to_device(np.ones((3, 3)), DEVICE)
    w = Tensor(np.ones((3, 3)), requires_grad=True, device=DEVICE)
    (w + 0.0).backward(seed)             # the caller's seed reaches w: w.grad is a copy
    assert len(copies) == 2 and not np.shares_memory(w.grad.array, seed.array)


def test_a_compiled_step_on_the_device_refuses_what_a_trace_cannot_follow():
    w = Tensor([1.0, 2.0], requires_grad=True, device=DEVICE)
    kept = autonet.core.device.to_device(np.array([1.0, 1.0]), DEVICE)
    (w * 1.0).sum().backward()     # w.grad is a device array
    steps = {
        "a device array argument": (lambda x: (w * Tensor(x)).sum(), "pass it as a Tensor"),
        "a .data read": (lambda x: (w * Tensor(w.data * 2.0)).sum(), r"reads \.data"),
        "a .grad read": (lambda x: (w * Tensor(w.grad)).sum(), r"reads \.grad"),
        "a device array that is no Tensor's": (lambda x: (w * kept).sum(), "no Tensor's"),
    }
    for name, (step, message) in steps.items():
        argument = kept if name == "a device array argument" else Tensor([1.0, 1.0], device=DEVICE)
        with pytest.raises(autonet.CompileError, match=message):
            autonet.compile(step)(argument)


def test_the_fused_backend_leaves_a_device_step_to_the_replay_and_says_why():
    pytest.importorskip("numba")
    model = nn.Linear(3, 1, rng=0).to(DEVICE)
    compiled = autonet.compile(_regression_step(model), backend="fused")
    x, y = Tensor(np.ones((4, 3)), device=DEVICE), Tensor(np.zeros((4, 1)), device=DEVICE)
    assert compiled(x, y).device == DEVICE and compiled(x, y).device == DEVICE
    assert "runs on double:0" in compiled.programs[0].backend and model.weight.device == DEVICE


def test_the_gpu_benchmark_runs_its_checks_and_steps_on_the_double(monkeypatch):
    """benchmarks/gpu.py waits for a GPU: its op checks and autonet steps run here with the
    double standing in for "cuda", so the script is known to work when one is at hand."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "gpu.py"
    spec = importlib.util.spec_from_file_location("gpu_benchmark", path)
    gpu = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu)

    class StandIn(device_double.DoubleBackend):
        kind = "cuda"

    monkeypatch.setitem(autonet.core.device._BACKENDS, "cuda", StandIn())
    assert gpu.check_ops(cupy=None) == 0.0           # the double computes with NumPy: exact
    for compiled in (False, True):
        step = gpu.autonet_step((6, 5, 3), 4, compiled)
        for _ in range(3):
            step()
