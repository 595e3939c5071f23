"""PyTorch's spellings (dim=, keepdim=, view, float(), cat, ...) raise errors naming autonet's."""
import numpy as np
import pytest

import autonet
from autonet import Tensor


@pytest.mark.parametrize("call, spelling", [
    (lambda t: t.sum(dim=0), "axis="), (lambda t: t.mean(axis=0, keepdim=True), "keepdims="),
    (lambda t: autonet.nn.functional.softmax(t, dim=1), "axis="),
    (lambda t: autonet.max(t, dim=1), "axis="), (lambda t: t.view(4), "reshape"),
    (lambda t: t.unsqueeze(0), "expand_dims"), (lambda t: t.float(), "astype"),
    (lambda t: t.to(np.float32), "astype"), (lambda t: autonet.cat([t, t]), "concatenate"),
    (lambda t: t.permute(1, 0), "transpose"), (lambda t: autonet.tensor([1.0]), "autonet.Tensor"),
])
def test_pytorch_spellings_name_autonets(call, spelling):
    t = Tensor(np.ones((2, 2)))
    with pytest.raises((TypeError, AttributeError), match=spelling):
        call(t)
    with pytest.raises(AttributeError, match="nonsense"):
        t.nonsense
