"""save / load: exact round trips of nested state, atomic and link-safe writes, clear refusals."""
import os
import threading
import zipfile

import numpy as np
import pytest

import autonet
import autonet.nn as nn
from autonet import Tensor
from autonet.optim import Adam
from device_double import here


def test_any_string_key_and_nested_values_round_trip(tmp_path):
    keys = ["allow_pickle", "file", "a/b.npy", "", "ünïcode", "autonet.json", "arrays/0.npy"]
    state = {key: np.arange(3.0) + i for i, key in enumerate(keys)}
    state["nested"] = {0: {"buffer": np.ones((2, 2), dtype=np.float32)}, "epoch": 7,
                       "betas": (0.9, 0.999), "names": ["a", "b"], "none": None, "inf": float("inf"),
                       "flag": True, "tensor": Tensor([1.0, 2.0])}
    autonet.save(state, tmp_path / "state.npz")
    loaded = autonet.load(tmp_path / "state.npz")
    assert list(loaded) == list(state)
    for key in keys:
        np.testing.assert_array_equal(loaded[key], state[key])
    nested = loaded["nested"]
    assert list(nested) == [0, "epoch", "betas", "names", "none", "inf", "flag", "tensor"]
    assert nested["epoch"] == 7 and nested["betas"] == (0.9, 0.999) and nested["names"] == ["a", "b"]
    assert nested["none"] is None and nested["inf"] == float("inf") and nested["flag"] is True
    assert nested[0]["buffer"].dtype == np.float32 and nested[0]["buffer"].flags.writeable
    np.testing.assert_array_equal(nested["tensor"], [1.0, 2.0])


def test_a_checkpoint_resumes_training_bit_for_bit(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 4)), here(rng.integers(0, 3, 16))

    def run(model, optimizer, steps):
        for _ in range(steps):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(Tensor(x)), y).backward()
            optimizer.step()

    def fresh():
        model = nn.Sequential(nn.Linear(4, 8, rng=1), nn.Tanh(), nn.Linear(8, 3, rng=2))
        return model, Adam(model.parameters(), lr=0.01, weight_decay=0.1)

    straight, straight_opt = fresh()
    run(straight, straight_opt, 10)
    first, first_opt = fresh()
    run(first, first_opt, 4)
    autonet.save({"model": first.state_dict(), "optimizer": first_opt.state_dict(), "epoch": 4},
                 tmp_path / "checkpoint.npz")
    checkpoint = autonet.load(tmp_path / "checkpoint.npz")
    resumed, resumed_opt = fresh()
    resumed.load_state_dict(checkpoint["model"])
    resumed_opt.load_state_dict(checkpoint["optimizer"])
    run(resumed, resumed_opt, 10 - checkpoint["epoch"])
    for a, b in zip(straight.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


def test_save_follows_no_planted_link_and_leaves_no_temporary(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    target = tmp_path / "model.npz"
    for pid_guess in range(os.getpid() - 2, os.getpid() + 3):   # the old predictable names
        os.symlink(victim, f"{target}.tmp-{pid_guess}")
    autonet.save({"w": np.ones(2)}, target)
    assert victim.read_text() == "precious" and not os.path.islink(target)
    np.testing.assert_array_equal(autonet.load(target)["w"], np.ones(2))
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_a_failed_save_keeps_the_old_file_and_removes_its_temporary(tmp_path, monkeypatch):
    target = tmp_path / "model.npz"
    autonet.save({"w": np.zeros(2)}, target)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np.lib.format, "write_array", broken)
    with pytest.raises(OSError, match="disk full"):
        autonet.save({"w": np.ones(2)}, target)
    monkeypatch.undo()
    np.testing.assert_array_equal(autonet.load(target)["w"], np.zeros(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]
    with pytest.raises(TypeError):
        autonet.save({"w": np.array(["text"])}, target)    # refused before any file is made
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


def test_threads_saving_to_one_path_never_corrupt_it(tmp_path):
    target = tmp_path / "shared.npz"
    errors = []

    def writer(value):
        try:
            for _ in range(10):
                autonet.save({"w": np.full(1000, float(value))}, target)
        except Exception as error:  # noqa: BLE001 - collected for the assertion
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    w = autonet.load(target)["w"]
    assert w.shape == (1000,) and len(set(w.tolist())) == 1        # one whole save, not a mix
    assert [p.name for p in tmp_path.iterdir()] == ["shared.npz"]


def test_load_refuses_what_it_cannot_read_safely(tmp_path):
    npy = tmp_path / "array.npy"
    np.save(npy, np.ones(3))
    with pytest.raises(ValueError, match="not an .npz archive"):
        autonet.load(npy)
    big = tmp_path / "big.npz"
    autonet.save({"w": np.zeros(100_000)}, big)                     # 800 KB of zeros
    with pytest.raises(ValueError, match="max_bytes"):
        autonet.load(big, max_bytes=100_000)
    assert autonet.load(big)["w"].shape == (100_000,)
    odd = tmp_path / "odd.npz"
    with zipfile.ZipFile(odd, "w") as archive:
        archive.writestr("notes.npy", b"these are not array bytes")
    with pytest.raises(ValueError, match="'notes.npy' is not an array"):
        autonet.load(odd)
    truncated = tmp_path / "truncated.npz"
    with zipfile.ZipFile(truncated, "w") as archive:
        with archive.open("w.npy", "w") as member:
            np.lib.format.write_array_header_1_0(
                member, {"descr": "<f8", "fortran_order": False, "shape": (1000,)})
            member.write(b"\0" * 80)                                # 10 of 1000 numbers
    with pytest.raises(ValueError, match="'w.npy' is truncated"):
        autonet.load(truncated)
