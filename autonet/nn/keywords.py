"""PyTorch's keyword names that autonet's layers and functionals do not take, refused with a
``TypeError`` that names autonet's spelling (``axis``, ``start_axis``, ``end_axis``) or says the
option is not offered (``inplace``: autonet's activations always return a new tensor).

>>> import autonet.nn as nn
>>> nn.Softmax(dim=1)
Traceback (most recent call last):
...
TypeError: Softmax: PyTorch's dim= is spelled axis= in autonet
"""
import functools
import inspect

SPELLINGS = {"dim": "axis", "keepdim": "keepdims", "start_dim": "start_axis", "end_dim": "end_axis",
             "p": "ord", "inplace": None}   # p: normalize's order, NumPy's ord


def refusing_pytorch_keywords(function, name):
    """``function`` (named ``name`` in messages), refusing the keys of ``SPELLINGS`` it lacks."""
    parameters = inspect.signature(function).parameters
    refused = {key: spelling for key, spelling in SPELLINGS.items() if key not in parameters}

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        if kwargs:
            for key in kwargs:
                if key in refused:
                    raise TypeError(_message(name, key, refused[key], parameters))
        return function(*args, **kwargs)
    return wrapper


def _message(name, key, spelling, parameters):
    if spelling is not None and spelling in parameters:
        return f"{name}: PyTorch's {key}= is spelled {spelling}= in autonet"
    if key == "inplace":
        return f"{name}: inplace= is not offered; autonet's layers always return a new tensor"
    return f"{name} takes no {key}= (PyTorch's keyword; autonet has no such option here)"


def refuse_in_classes(classes):
    """Make each class's constructor refuse the PyTorch keywords it lacks."""
    for cls in classes:
        cls.__init__ = refusing_pytorch_keywords(cls.__init__, cls.__name__)
