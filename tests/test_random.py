"""autonet.random: the default generator's seeds and states, and layers drawing from it."""
import numpy as np
import pytest

import autonet
import autonet.nn as nn
from autonet import Tensor
from autonet.data import DataLoader


# ------------------------------------------------------------------ autonet.random
def _seeded_run(seed):
    """Initialisers, Dropout and a shuffling DataLoader, all on rng=None, and a training step."""
    autonet.random.seed(seed)
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 1))
    nn.init.normal_(model[0].bias)
    data = np.arange(30.0).reshape(10, 3)
    optimizer = autonet.optim.SGD(model.parameters(), lr=0.01)
    for (batch,) in DataLoader(data, batch_size=4, shuffle=True):
        loss = model(Tensor(batch)).sum() + nn.functional.dropout(Tensor(batch)).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return [p.data.copy() for p in model.parameters()]


def test_seeded_runs_repeat_bit_for_bit_and_other_seeds_differ():
    first, again, other = _seeded_run(5), _seeded_run(5), _seeded_run(6)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def test_seed_draws_numpys_default_rng_numbers_and_manual_seed_is_its_alias():
    autonet.manual_seed(11)
    t = nn.init.uniform_(Tensor(np.zeros(5)))
    np.testing.assert_array_equal(t.data, np.random.default_rng(11).uniform(0.0, 1.0, 5))
    assert autonet.manual_seed is autonet.random.seed is autonet.random.manual_seed


def test_get_state_round_trips_through_save_and_load(tmp_path):
    autonet.random.seed(3)
    nn.Linear(4, 4)                                   # move the state on
    path = str(tmp_path / "checkpoint.npz")
    autonet.save({"rng": autonet.random.get_state(), "epoch": 2}, path)
    expected = nn.init.normal_(Tensor(np.zeros(6))).data
    autonet.random.seed(99)
    autonet.random.set_state(autonet.load(path)["rng"])
    np.testing.assert_array_equal(nn.init.normal_(Tensor(np.zeros(6))).data, expected)


def test_dropout_kept_generator_follows_a_later_seed():
    layer = nn.Dropout(0.5)
    x = Tensor(np.ones(20))
    autonet.random.seed(1)
    first = layer(x).data
    autonet.random.seed(1)
    np.testing.assert_array_equal(layer(x).data, first)


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_seed_refuses_anything_but_a_non_negative_int(bad):
    state = autonet.random.get_state()
    with pytest.raises(TypeError, match="seed: n must be an int"):
        autonet.random.seed(bad)
    assert autonet.random.get_state() == state


@pytest.mark.parametrize("bad", [{}, {"bit_generator": "MT19937"}, 3,
                                 {"bit_generator": "PCG64", "state": {"state": "x", "inc": "1"},
                                  "has_uint32": 0, "uinteger": 0}])
def test_set_state_refuses_what_get_state_did_not_make(bad):
    state = autonet.random.get_state()
    with pytest.raises(ValueError, match="set_state: state must be a dict from"):
        autonet.random.set_state(bad)
    assert autonet.random.get_state() == state
