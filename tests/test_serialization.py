"""save / load: exact round trips of nested state, atomic and link-safe writes, clear refusals."""
import json
import math
import os
import signal
import subprocess
import sys
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


# ----------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("array", [np.zeros((0, 3), dtype=np.float32), np.array(7, dtype=np.int8),
                                   np.array([np.nan, -0.0, np.inf, -np.inf]), np.ones((2, 3), order="F"),
                                   np.arange(12.0).reshape(3, 4)[:, ::2], np.array([True, False]),
                                   np.array([2 ** 63 + 1], dtype=np.uint64), np.ones(2, dtype=np.float16)],
                         ids=["empty", "0-d int8", "nan-inf-negzero", "fortran", "strided", "bool",
                              "uint64", "float16"])
def test_arrays_round_trip_bit_for_bit(tmp_path, array):
    autonet.save({"a": array}, tmp_path / "a.npz")
    loaded = autonet.load(tmp_path / "a.npz")["a"]
    assert loaded.dtype == array.dtype and loaded.shape == array.shape
    assert loaded.tobytes() == np.ascontiguousarray(array).tobytes()


def test_plain_values_round_trip_exactly(tmp_path):
    state = {"nan": math.nan, "negzero": -0.0, "inf": -math.inf, "big": 2 ** 70, 2 ** 70: "key",
             -3: None, "text": "a\x00b\n/é", "empty": {}, "nested": [(), [], {"": 1}]}
    autonet.save(state, tmp_path / "plain.npz")
    loaded = autonet.load(tmp_path / "plain.npz")
    assert math.isnan(loaded["nan"]) and math.copysign(1.0, loaded["negzero"]) == -1.0
    assert loaded["inf"] == -math.inf and loaded["big"] == 2 ** 70 and loaded[2 ** 70] == "key"
    assert loaded[-3] is None and loaded["text"] == state["text"] and loaded["empty"] == {}
    assert loaded["nested"] == [(), [], {"": 1}]


def test_an_empty_dict_saves_and_loads(tmp_path):
    autonet.save({}, tmp_path / "empty.npz")
    assert autonet.load(tmp_path / "empty.npz") == {}
    with np.load(tmp_path / "empty.npz") as archive:
        assert archive.files == ["autonet"]


def _crafted(path, manifest, members=()):
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open("autonet.npy", "w") as member:
            np.lib.format.write_array(member, manifest)
        for name, array in members:
            with archive.open(name, "w") as member:
                np.lib.format.write_array(member, array)
    return path


@pytest.mark.parametrize("manifest, message", [
    (np.array(['{"format": 2, "tree": {"dict": []}}'] * 2), "one string"),
    (np.arange(3), "holds int64"),
    (np.array('{"format": 3, "tree": {"dict": []}}'), "format 3"),
    (np.array("not json"), "not valid JSON"),
    (np.array('{"format": 2, "tree": {"dict": [[{"str": "w"}, {"array": "../../etc/passwd"}]]}}'),
     "does not hold"),
    (np.array('{"format": 2, "tree": {"dict": [[{"str": "w"}, {"array": 0}]]}}'), "does not hold"),
    (np.array('{"format": 2, "tree": {"dict": [[{"str": "w"}, {"float": "1.5"}]]}}'), "'float' entry"),
    (np.array('{"format": 2, "tree": {"dict": [[{"str": "w"}]]}}'), "malformed dict entry"),
], ids=["two strings", "int manifest", "future format", "not json", "traversal name", "int reference",
        "string float", "short pair"])
def test_crafted_manifests_are_refused_saying_what(tmp_path, manifest, message):
    path = _crafted(tmp_path / "crafted.npz", manifest, [("w.npy", np.ones(2))])
    with pytest.raises(ValueError, match=message):
        autonet.load(path)


def test_a_failed_save_into_a_directory_leaves_no_temporary(tmp_path):
    (tmp_path / "taken.npz").mkdir()
    with pytest.raises(OSError):
        autonet.save({"w": np.ones(2)}, tmp_path / "taken.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.npz"]


def test_a_cut_archive_is_refused(tmp_path):
    autonet.save({"w": np.arange(1000.0)}, tmp_path / "whole.npz")
    data = (tmp_path / "whole.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not an .npz archive|truncated or corrupt"):
        autonet.load(tmp_path / "cut.npz")


def test_the_manifest_is_readable_json_naming_every_member(tmp_path):
    model = nn.Sequential(nn.Linear(2, 3, rng=0), nn.ReLU(), nn.Linear(3, 1, rng=1))
    autonet.save({"model": model.state_dict(), "step": 12}, tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as archive:
        tree = json.loads(str(archive["autonet"]))["tree"]
        names = set(archive.files) - {"autonet"}
    referenced = {entry[1]["array"][:-4] for entry in tree["dict"][0][1]["dict"]}
    assert referenced == names == {f"model/{key}" for key in model.state_dict()}


# ----------------------------------------------------------------- crafted checkpoints
def _archive(path, manifest, members=(), manifest_name="autonet.npy"):
    with zipfile.ZipFile(path, "w") as archive:
        if manifest_name == "autonet.npy":
            with archive.open(manifest_name, "w") as member:
                np.lib.format.write_array(member, np.array(manifest))
        else:
            archive.writestr(manifest_name, manifest)
        for name, array in members:
            with archive.open(name, "w") as member:
                np.lib.format.write_array(member, array)
    return path


_CRAFTED = {
    "not a dict": "[]",
    "an int at the top": json.dumps({"format": 2, "tree": {"int": 1}}),
    "a missing member": json.dumps({"format": 2, "tree": {"dict": [[{"str": "w"}, {"array": "gone.npy"}]]}}),
    "a dict of a string": json.dumps({"format": 2, "tree": {"dict": "x"}}),
    "two kinds in a node": json.dumps({"format": 2, "tree": {"dict": [], "list": []}}),
    "a list as a key": json.dumps({"format": 2, "tree": {"dict": [[{"list": []}, {"int": 1}]]}}),
    "a bool for an int": json.dumps({"format": 2, "tree": {"dict": [[{"str": "a"}, {"int": True}]]}}),
    "an unknown kind": json.dumps({"format": 2, "tree": {"dict": [[{"str": "a"}, {"pickle": "x"}]]}}),
    "deep nesting": '{"format": 2, "tree": {"dict": [[{"str": "a"}, ' + '{"list": [' * 3000
                    + ']}' * 3000 + ']]}}',
    "absurd JSON nesting": "[" * 100_000 + "]" * 100_000,
    "no tree": json.dumps({"format": 2}),
    "format as a string": json.dumps({"format": "2", "tree": {"dict": []}}),
}


@pytest.mark.parametrize("manifest_name", ["autonet.npy", "autonet.json"])
@pytest.mark.parametrize("case", sorted(_CRAFTED))
def test_load_refuses_a_crafted_manifest_clearly(tmp_path, case, manifest_name):
    text = _CRAFTED[case]
    if manifest_name == "autonet.json":   # the first format, arrays numbered
        text = text.replace('"format": 2', '"format": 1').replace('"gone.npy"', "7")
    path = _archive(tmp_path / "crafted.npz", text, [("w.npy", np.ones(2))], manifest_name)
    with pytest.raises(ValueError, match="load: "):
        autonet.load(path)


def test_one_member_referred_to_twice_is_refused(tmp_path):
    tree = {"dict": [[{"str": "a"}, {"array": "w.npy"}], [{"str": "b"}, {"array": "w.npy"}]]}
    path = _archive(tmp_path / "twice.npz", json.dumps({"format": 2, "tree": tree}), [("w.npy", np.ones(2))])
    with pytest.raises(ValueError, match="twice"):
        autonet.load(path)


@pytest.mark.parametrize("array", [np.ones(2, dtype=complex), np.zeros(2, dtype="i4,f8"),
                                   np.array(["2026-01-01"], dtype="datetime64[D]"), np.array(["text"])],
                         ids=["complex", "structured", "datetime", "string"])
def test_load_refuses_members_that_save_refuses(tmp_path, array):
    with pytest.raises(TypeError):
        autonet.save({"w": array}, tmp_path / "refused.npz")
    np.savez(tmp_path / "plain.npz", w=array)
    with pytest.raises(ValueError, match="'w.npy' holds"):
        autonet.load(tmp_path / "plain.npz")
    tree = {"dict": [[{"str": "w"}, {"array": "w.npy"}]]}
    path = _archive(tmp_path / "crafted.npz", json.dumps({"format": 2, "tree": tree}), [("w.npy", array)])
    with pytest.raises(ValueError, match="'w.npy' holds"):
        autonet.load(path)


def test_an_archive_of_the_first_format_still_loads(tmp_path):
    tree = {"dict": [[{"str": "w"}, {"array": 0}], [{"str": "epoch"}, {"int": 3}]]}
    path = _archive(tmp_path / "old.npz", json.dumps({"format": 1, "tree": tree}),
                    [("arrays/0.npy", np.arange(3.0))], manifest_name="autonet.json")
    loaded = autonet.load(path)
    assert loaded["epoch"] == 3
    np.testing.assert_array_equal(loaded["w"], [0.0, 1.0, 2.0])


# ----------------------------------------------------------------- checkpoint format (contract v3)
def test_every_member_is_an_array_named_by_its_key_path(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.BatchNorm1d(4))
    optimizer = Adam(model.parameters())
    model(Tensor(np.ones((2, 3)))).sum().backward()
    optimizer.step()
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 4}
    autonet.save(state, tmp_path / "checkpoint.npz")
    with np.load(tmp_path / "checkpoint.npz", allow_pickle=False) as archive:
        names = set(archive.files)
        members = {name: archive[name] for name in names}      # every member reads as an array
    assert {"model/0.weight", "model/0.bias", "model/1.running_mean", "model/1.num_batches_tracked",
            "optimizer/state/0/exp_avg", "optimizer/state/3/step", "autonet"} <= names
    np.testing.assert_array_equal(members["model/0.weight"], state["model"]["0.weight"])
    assert members["autonet"].dtype.kind == "U" and members["autonet"].shape == ()
    assert '"epoch"' in str(members["autonet"])                  # plain numbers live in the JSON
    loaded = autonet.load(tmp_path / "checkpoint.npz")
    assert loaded["epoch"] == 4 and list(loaded["model"]) == list(state["model"])
    assert loaded["optimizer"]["param_groups"] == state["optimizer"]["param_groups"]


def test_keys_that_would_name_one_member_twice_get_distinct_members(tmp_path):
    state = {"a/b": np.zeros(1), "a": {"b": np.ones(1)}, "autonet": np.full(1, 2.0)}
    autonet.save(state, tmp_path / "tricky.npz")
    with np.load(tmp_path / "tricky.npz") as archive:
        assert len(archive.files) == 4
    loaded = autonet.load(tmp_path / "tricky.npz")
    np.testing.assert_array_equal(loaded["a/b"], [0.0])
    np.testing.assert_array_equal(loaded["a"]["b"], [1.0])
    np.testing.assert_array_equal(loaded["autonet"], [2.0])


_KILLED_SAVE = """
import os, sys, time, numpy as np, autonet
real = np.lib.format.write_array
def slow(*args, **kwargs):
    print("writing", flush=True)
    time.sleep(60)
np.lib.format.write_array = slow
autonet.save({"w": np.ones(3)}, sys.argv[1])
"""


def test_a_save_killed_by_sigkill_leaves_a_temporary_the_next_save_removes(tmp_path):
    target = tmp_path / "model.npz"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    child = subprocess.Popen([sys.executable, "-c", _KILLED_SAVE, str(target)], stdout=subprocess.PIPE,
                             env=env, text=True)
    assert child.stdout.readline().strip() == "writing"
    child.send_signal(signal.SIGKILL)
    child.wait()
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].endswith(".tmp")           # SIGKILL runs no cleanup
    autonet.save({"w": np.zeros(3)}, target)
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


def test_a_save_in_progress_in_a_live_process_is_left_alone(tmp_path):
    target = tmp_path / "model.npz"
    in_progress = tmp_path / f".model.npz.{os.getpid()}.abcd1234.tmp"   # this process: alive
    in_progress.write_bytes(b"half written")
    other = tmp_path / ".other.npz.1.abcd1234.tmp"                      # another path's
    other.write_bytes(b"not ours")
    autonet.save({"w": np.zeros(3)}, target)
    assert in_progress.exists() and other.exists()


def test_a_missing_path_or_a_directory_raise_what_open_raises(tmp_path):
    # as numpy.load and torch.load: not "is not an .npz archive (a .npy file?)"
    with pytest.raises(FileNotFoundError):
        autonet.load(tmp_path / "never_saved.npz")
    with pytest.raises(IsADirectoryError):
        autonet.load(tmp_path)


def _damaged(data, rng):
    damaged = bytearray(data)
    for position in rng.integers(0, len(data), size=rng.integers(1, 5)):
        damaged[position] = rng.integers(0, 256)
    return bytes(damaged)


@pytest.mark.parametrize("compressed", [False, True], ids=["stored", "deflated"])
def test_damaged_bytes_anywhere_give_a_value_error(tmp_path, compressed):
    # zipfile and zlib raise NotImplementedError ("zip file version 12.8"), RuntimeError
    # ("is encrypted"), zlib.error, EOFError or OSError on damaged bytes; load says ValueError
    whole = tmp_path / "whole.npz"
    if compressed:
        np.savez_compressed(whole, w=np.arange(100.0), b=np.ones((3, 3)))
    else:
        autonet.save({"model": {"w": np.arange(20.0).reshape(4, 5)}, "epoch": 3}, whole)
    data, rng, damaged = whole.read_bytes(), np.random.default_rng(0), tmp_path / "damaged.npz"
    kinds = set()
    for _ in range(600):
        damaged.write_bytes(_damaged(data, rng))
        try:
            autonet.load(damaged)
        except ValueError as error:
            kinds.add(str(error).split("(")[-1].split(":")[0])
    assert kinds & {"NotImplementedError", "error", "RuntimeError", "EOFError", "OSError"}


def test_an_unsupported_compression_method_or_encryption_flag_is_a_value_error(tmp_path):
    path = tmp_path / "w.npz"
    autonet.save({"w": np.ones(3)}, path)
    data = path.read_bytes()
    entry = data.index(b"PK\x01\x02")              # the first member's central directory entry
    method = bytearray(data)
    method[entry + 10:entry + 12] = (99).to_bytes(2, "little")   # its compression method
    flagged = bytearray(data)
    flagged[entry + 8] |= 1                                      # its "encrypted" flag bit
    for damaged in (method, flagged):
        path.write_bytes(bytes(damaged))
        with pytest.raises(ValueError, match="truncated or corrupt"):
            autonet.load(path)


def test_save_names_a_missing_directory_not_its_temporary_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="make it first") as missing:
        autonet.save({"w": np.ones(2)}, tmp_path / "not_made" / "w.npz")
    assert missing.value.filename == str(tmp_path / "not_made")
    (tmp_path / "a_file").write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="is a file") as under_a_file:
        autonet.save({"w": np.ones(2)}, tmp_path / "a_file" / "w.npz")
    assert under_a_file.value.filename == str(tmp_path / "a_file")
    (tmp_path / "taken.npz").mkdir()
    with pytest.raises(IsADirectoryError) as directory:
        autonet.save({"w": np.ones(2)}, tmp_path / "taken.npz")
    assert directory.value.filename == str(tmp_path / "taken.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "taken.npz"]
    with pytest.raises(IsADirectoryError, match="ending in a separator") as slash:   # as open()
        autonet.save({"w": np.ones(2)}, f"{tmp_path}/new.npz/")     # was: the temporary '..<pid>...'
    assert slash.value.filename == f"{tmp_path}/new.npz/"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "taken.npz"]


def test_an_empty_path_is_refused_before_any_file_is_made(tmp_path, monkeypatch):
    # it made its temporary file in the working directory's parent, then failed to move it to ''
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for path in ("", b""):
        with pytest.raises(FileNotFoundError, match="empty path"):
            autonet.save({"w": np.ones(2)}, path)
    assert [p.name for p in tmp_path.iterdir()] == ["work"] and list(work.iterdir()) == []


def test_a_bytes_path_saves_and_loads(tmp_path):
    # was: TypeError "cannot use a string pattern on a bytes-like object"
    path = os.fsencode(tmp_path / "w.npz")
    autonet.save({"w": np.arange(3.0)}, path)
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]
    assert autonet.load(path)["w"].tolist() == [0.0, 1.0, 2.0]


# ----------------------------------------------------------------- module state
def _two_layers_sharing_a_buffer():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    shared = Tensor(np.zeros(3))
    model[0].register_buffer("stat", shared)
    model[1].register_buffer("stat", shared)
    model.register_buffer("unset", None)
    return model, shared


def test_a_shared_buffer_is_listed_once_and_saved_under_every_name():
    # PyTorch's named_buffers() (remove_duplicate=True) gives ['0.stat']; state_dict() keeps both
    model, shared = _two_layers_sharing_a_buffer()
    assert list(model.named_buffers()) == [("0.stat", shared)]
    assert [b is shared for b in model.buffers()] == [True]
    assert [name for name, _ in model.named_buffers(prefix="m")] == ["m.0.stat"]
    assert list(model.state_dict()) == ["0.weight", "0.bias", "0.stat", "1.weight", "1.bias", "1.stat"]


@pytest.mark.parametrize("given", ["model.npz", [("weight", np.ones((2, 2))), ("bias", np.ones(2))]],
                         ids=["a path", "a list of pairs"])
def test_load_state_dict_takes_only_a_mapping(given):
    # a path with strict=False loaded nothing and reported every key missing, silently
    # (PyTorch: TypeError "Expected state_dict to be dict-like")
    layer = nn.Linear(2, 2)
    before = layer.state_dict()
    for strict in (True, False):
        with pytest.raises(TypeError, match="autonet.load\\(path\\)"):
            layer.load_state_dict(given, strict=strict)
    assert all(np.array_equal(before[k], v) for k, v in layer.state_dict().items())


@pytest.mark.parametrize("max_bytes", [math.nan, math.inf, 1.5e9, None, True, 0, -1, "2GB"])
@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_max_bytes_must_be_a_positive_int(tmp_path, max_bytes, suffix):
    # NaN compared False with every size, so the limit was silently off; None was a bare TypeError
    path = tmp_path / f"w{suffix}"
    path.write_bytes(b"\0" * 64)   # never opened: the argument is refused first
    with pytest.raises(ValueError, match="max_bytes must be a positive int"):
        autonet.load(path, max_bytes=max_bytes)


def test_an_integer_max_bytes_of_any_int_type_is_taken(tmp_path):
    autonet.save({"w": np.zeros(100)}, tmp_path / "w.npz")
    assert autonet.load(tmp_path / "w.npz", max_bytes=np.int64(10_000))["w"].shape == (100,)
    with pytest.raises(ValueError, match="more than max_bytes"):
        autonet.load(tmp_path / "w.npz", max_bytes=np.int32(100))


def _nested(depth, leaf):
    obj = leaf
    for _ in range(depth):
        obj = {"a": obj}
    return obj


@pytest.mark.parametrize("leaf", [{}, 1.5, np.ones(2)], ids=["empty dict", "number", "array"])
def test_save_refuses_what_load_would_refuse_as_too_deep(tmp_path, leaf):
    # a 101-level dict was written, then load refused it; a list holding itself hit RecursionError
    deepest = 100                                          # load's limit: the leaf at level 100
    autonet.save(_nested(deepest, leaf), tmp_path / "deep.npz")
    loaded = autonet.load(tmp_path / "deep.npz")
    for _ in range(deepest - 1):
        loaded = loaded["a"]
    assert np.array_equal(loaded["a"], leaf) if isinstance(leaf, np.ndarray) else loaded["a"] == leaf
    with pytest.raises(ValueError, match="deeper than 100 levels"):
        autonet.save(_nested(deepest + 1, leaf), tmp_path / "deeper.npz")
    itself = []
    itself.append(itself)
    with pytest.raises(ValueError, match="holds itself"):
        autonet.save({"loop": itself}, tmp_path / "loop.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["deep.npz"]


@pytest.mark.parametrize("key", ["a\x00b", "\ud800", "x" * 70_000, "é" * 600],
                         ids=["NUL", "lone surrogate", "70,000 characters", "1,200 bytes of UTF-8"])
def test_keys_no_zip_member_name_can_hold_round_trip(tmp_path, key):
    # NUL: the file was written and load refused it (zip readers cut the name at NUL); a lone
    # surrogate raised UnicodeEncodeError and a long key struct.error ("ushort format requires")
    state = {key: np.arange(3.0), "nested": {key: np.ones(2), key + "~": np.zeros(1)}}
    autonet.save(state, tmp_path / "keys.npz")
    loaded = autonet.load(tmp_path / "keys.npz")
    assert list(loaded) == [key, "nested"] and list(loaded["nested"]) == [key, key + "~"]
    assert loaded[key].tolist() == [0.0, 1.0, 2.0] and loaded["nested"][key].tolist() == [1.0, 1.0]
    assert loaded["nested"][key + "~"].tolist() == [0.0]
    with np.load(tmp_path / "keys.npz") as archive:           # numpy lists three members and the manifest
        assert len(archive.files) == 4 and all(len(name.encode()) <= 1024 + len("~2") for name in archive.files)


def test_a_read_only_buffer_is_refused_before_anything_is_written():
    # load_state_dict wrote 'weight', then failed on the read-only buffer: half a state loaded
    layer = nn.Linear(2, 2)
    frozen = np.zeros(3)
    frozen.flags.writeable = False
    layer.register_buffer("stat", autonet.from_dlpack(frozen))   # shares the read-only memory
    before = layer.state_dict()
    state = {"weight": np.full((2, 2), 5.0), "bias": np.ones(2), "stat": np.ones(3)}
    with pytest.raises(ValueError, match="'stat' holds a read-only array"):
        layer.load_state_dict(state)
    assert all(np.array_equal(before[k], v) for k, v in layer.state_dict().items())


@pytest.mark.parametrize("length", [233, 255])
def test_a_file_name_up_to_the_file_systems_limit_saves(tmp_path, length):
    # the temporary name (".<name>.<pid>.<random>.tmp") passed 255 bytes: "File name too long"
    name = "m" * (length - len(".npz")) + ".npz"
    autonet.save({"w": np.arange(2.0)}, tmp_path / name)
    autonet.save({"w": np.arange(3.0)}, tmp_path / name)       # over the first, atomically
    assert [p.name for p in tmp_path.iterdir()] == [name]
    assert autonet.load(tmp_path / name)["w"].tolist() == [0.0, 1.0, 2.0]


def test_a_pytorch_checkpoint_is_refused_saying_how_to_convert_it(tmp_path):
    # torch.save writes a zip whose pickle is '<name>/data.pkl' (members as PyTorch 2.13 names
    # them); it was refused as "member 'm/data.pkl' is not an array"
    path = tmp_path / "m.pt"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in [("m/data.pkl", b"\x80\x02}q\x00."), ("m/.format_version", b"1"),
                           ("m/byteorder", b"little"), ("m/data/0", b"\0" * 16), ("m/version", b"3\n")]:
            archive.writestr(name, data)
    with pytest.raises(ValueError, match="PyTorch checkpoint.*safetensors.torch.save_file"):
        autonet.load(path)


def test_recurse_false_lists_only_the_modules_own_parameters_and_buffers():
    # PyTorch's recurse=False (was: TypeError "unexpected keyword argument 'recurse'")
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    norm = model[1]
    norm.extra = nn.Linear(1, 1)                                 # a child's: not its own
    assert list(model.named_parameters(recurse=False)) == [] and list(model.buffers(recurse=False)) == []
    assert [name for name, _ in norm.named_parameters(recurse=False)] == ["weight", "bias"]
    assert [p is q for p, q in zip(norm.parameters(recurse=False), [norm.weight, norm.bias])] == [True] * 2
    assert [name for name, _ in norm.named_buffers("m", recurse=False)] == [
        "m.running_mean", "m.running_var", "m.num_batches_tracked"]
    assert len(list(norm.buffers(recurse=False))) == 3 and len(list(norm.parameters())) == 4
    with pytest.raises(ValueError, match="recurse must be True or False"):
        list(model.parameters(recurse="no"))


def test_a_link_at_the_path_is_written_through_as_numpy_save_does(tmp_path):
    # the link was replaced by a new file and its target kept the old checkpoint
    (tmp_path / "runs").mkdir()
    target = tmp_path / "runs" / "model.npz"
    autonet.save({"w": np.zeros(2)}, target)
    latest = tmp_path / "latest.npz"
    latest.symlink_to(target)
    autonet.save({"w": np.ones(2)}, latest)
    assert latest.is_symlink() and os.readlink(latest) == str(target)
    assert autonet.load(target)["w"].tolist() == [1.0, 1.0]
    np.save(tmp_path / "runs" / "a.npy", np.zeros(1))             # the reference: numpy's own save
    (tmp_path / "a.npy").symlink_to(tmp_path / "runs" / "a.npy")
    np.save(tmp_path / "a.npy", np.ones(1))
    assert (tmp_path / "a.npy").is_symlink() and np.load(tmp_path / "runs" / "a.npy").tolist() == [1.0]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["a.npy", "model.npz"]


def test_load_state_dict_takes_tensors_where_the_model_is():
    # Tensors on a device (the double in its run; CuPy's arrays likewise) were converted with
    # np.asarray: "implicit conversion of a DeviceArray to NumPy"
    source, layer = nn.Linear(3, 2), nn.Linear(3, 2)
    state = dict(source.named_parameters())
    state["weight"] = state["weight"] * 2.0          # a Tensor made by an op, where the model is
    layer.load_state_dict(state)
    expected = source.state_dict()
    np.testing.assert_array_equal(layer.state_dict()["weight"], 2.0 * expected["weight"])
    np.testing.assert_array_equal(layer.state_dict()["bias"], expected["bias"])
    assert layer.weight.device == source.weight.device and layer.weight.requires_grad


@pytest.mark.parametrize("umask", [0o077, 0o022, 0o002])
def test_a_new_file_gets_the_permissions_numpy_save_gives_it(tmp_path, umask):
    # a new file was always rw-r--r--: readable by everyone under a private umask of 077
    previous = os.umask(umask)
    try:
        np.save(tmp_path / "reference.npy", np.ones(1))
        autonet.save({"w": np.ones(1)}, tmp_path / "w.npz")
    finally:
        os.umask(previous)
    expected = (tmp_path / "reference.npy").stat().st_mode & 0o777
    assert expected == 0o666 & ~umask
    assert (tmp_path / "w.npz").stat().st_mode & 0o777 == expected
