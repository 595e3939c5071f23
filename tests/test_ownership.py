"""core.ownership: a gradient becomes ``.grad`` uncopied only when nothing else can see it."""
import numpy as np

import autonet
from autonet import Tensor
from autonet.core.ownership import claim


def test_claim_hands_over_an_array_only_the_mapping_holds():
    grads = {"a": np.ones(3)}
    address = grads["a"].__array_interface__["data"][0]
    taken = claim(grads, "a")
    assert "a" not in grads and taken.__array_interface__["data"][0] == address


def test_claim_copies_whatever_someone_else_can_see():
    held = np.ones(3)
    base = np.ones(6)
    frozen = np.ones(3)
    frozen.flags.writeable = False
    cases = {
        "held elsewhere": held,
        "a view": base[:3],
        "read-only": frozen,
        "a broadcast": np.broadcast_to(np.ones(1), (3,)),
    }
    for name, array in cases.items():
        grads = {name: array}
        taken = claim(grads, name)
        assert not np.shares_memory(taken, array), name
        assert taken.flags.writeable and taken.base is None, name
        np.testing.assert_array_equal(taken, array)
    grads = {"view": base[1:4]}                   # a view nothing else holds: still its base's
    assert not np.shares_memory(claim(grads, "view"), base)
    grads = {"read-only": np.ones(3)}
    grads["read-only"].flags.writeable = False    # nothing else holds it, but .grad must be writeable
    assert claim(grads, "read-only").flags.writeable
    shared = np.ones(2)
    grads = {"x": shared, "y": shared}            # one array for two inputs, as add returns
    first, second = claim(grads, "x"), claim(grads, "y")
    assert first is not second


def test_gradients_never_alias_each_other_or_user_arrays():
    seed = np.ones(3)
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x + y).backward(seed)                       # add passes the user's seed to both
    assert not np.shares_memory(x.grad, seed) and not np.shares_memory(y.grad, seed)
    assert not np.shares_memory(x.grad, y.grad)
    x.grad += 1                                  # writing one .grad changes nothing else
    np.testing.assert_array_equal(seed, 1.0)
    np.testing.assert_array_equal(y.grad, 1.0)
    z = Tensor([1.0, 2.0], requires_grad=True)
    (g1, g2) = autonet.grad((z * 2).sum(), [z, z])
    assert g1.data is not g2.data
