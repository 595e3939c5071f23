"""Guards walk objects whose class answers an attribute on instances only (an enum member's
``value``: ``Mode.value`` raises AttributeError). Such a step compiles, and a changed member is
seen. (pytest's rewritten ``assert`` reaches such an object through its helper module.)"""
import enum

import numpy as np

import autonet
from autonet import Tensor


class Scale(enum.Enum):
    HALF = 0.5
    TWICE = 2.0


SCALE = Scale.HALF


def test_a_step_reading_an_enum_members_value_compiles_and_sees_a_new_member():
    global SCALE
    w = Tensor(np.array([1.0, -3.0]), requires_grad=True)

    def step(x):
        loss = (w * x).sum() * SCALE.value
        loss.backward()
        return loss

    compiled = autonet.compile(step)
    x = Tensor(np.array([2.0, 1.0]))
    try:
        assert compiled(x).item() == -0.5          # (2 - 3) * 0.5, traced
        assert compiled(x).item() == -0.5          # replayed
        SCALE = Scale.TWICE
        assert compiled(x).item() == -2.0          # the global is another member: retraced
        assert len(compiled.programs) == 2
    finally:
        SCALE = Scale.HALF
