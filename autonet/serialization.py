"""save / load: nested state (models, optimizers, counters) as ``.npz`` archives, never pickle.

An archive is a zip of ``.npy`` members, one per array, plus ``autonet.json``,
which records the structure: dicts (string or int keys, any string), lists,
tuples, numbers, strings, None, and references to the arrays. Plain ``.npz``
files of arrays (``numpy.savez``, older autonet) load as ``{name: array}``.

>>> import os, tempfile, numpy as np, autonet
>>> path = os.path.join(tempfile.mkdtemp(), "checkpoint.npz")
>>> autonet.save({"epoch": 3, "state": {0: {"buffer": np.ones(2)}}}, path)
>>> autonet.load(path)
{'epoch': 3, 'state': {0: {'buffer': array([1., 1.])}}}
"""
import json
import math
import os
import tempfile
import zipfile

import numpy as np

from .interop import is_safetensors, load_safetensors, save_safetensors
from .core import device as devices
from .core.tensor import Tensor

DEFAULT_MAX_BYTES = 2 ** 31
"""``load`` refuses archives whose members would expand beyond this (2 GiB) unless told."""

_MANIFEST = "autonet.json"
_FORMAT = 1


# ------------------------------------------------------------------ save
def save(obj, path):
    """Write the dict ``obj`` to exactly ``path``, atomically.

    Values may be ndarrays, Tensors, numbers, strings, None, and dicts, lists
    or tuples of these, nested (a model's and an optimizer's ``state_dict()``,
    an epoch number). Everything is checked before any file is made. The
    archive is written to a new temporary file with an unpredictable name,
    created exclusively beside ``path`` (so no planted link is followed),
    flushed to disk, then moved over ``path``: readers see the old file or
    the new one, never a mix; any failure removes the temporary file.
    A path ending in ``.safetensors`` takes a flat dict of arrays (autonet.interop).
    """
    if is_safetensors(path):
        return save_safetensors(obj, path)
    if not isinstance(obj, dict):
        raise TypeError(f"save takes a dict, not {type(obj).__name__}")
    arrays = []
    manifest = json.dumps({"format": _FORMAT, "tree": _encode(obj, arrays, "obj")})
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(
        dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        os.fchmod(descriptor, _mode_for(path))
        with os.fdopen(descriptor, "wb") as file:
            with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
                archive.writestr(_MANIFEST, manifest)
                for number, array in enumerate(arrays):
                    with archive.open(f"arrays/{number}.npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, array, allow_pickle=False)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.lexists(temporary):
            os.unlink(temporary)
        raise


def _mode_for(path):
    """Keep the permissions of the file being replaced; a new file gets rw-r--r--."""
    try:
        return os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        return 0o644


def _encode(value, arrays, where):
    """``value`` as JSON-able data; arrays go to ``arrays`` and are referenced by number."""
    if isinstance(value, Tensor):
        value = value.data
    if devices.is_foreign(value):
        value = devices.to_host(value)   # saved from its device to the host, explicitly
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise TypeError(f"save: {where} holds {value.dtype} data; only numeric arrays are saved")
        arrays.append(value)
        return {"array": len(arrays) - 1}
    if value is None or isinstance(value, (bool, np.bool_)):
        return {"none": None} if value is None else {"bool": bool(value)}
    if isinstance(value, (int, np.integer)):
        return {"int": int(value)}
    if isinstance(value, (float, np.floating)):
        return {"float": float(value)}
    if isinstance(value, str):
        return {"str": value}
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            if isinstance(key, bool) or not isinstance(key, (str, int, np.integer)):
                raise TypeError(f"save: {where} has a key {key!r}; keys must be strings or ints")
            tagged = {"str": key} if isinstance(key, str) else {"int": int(key)}
            items.append([tagged, _encode(item, arrays, f"{where}[{key!r}]")])
        return {"dict": items}
    if isinstance(value, (list, tuple)):
        kind = "list" if isinstance(value, list) else "tuple"
        return {kind: [_encode(item, arrays, f"{where}[{i}]") for i, item in enumerate(value)]}
    raise TypeError(f"save: {where} is a {type(value).__name__}; save takes arrays, Tensors, "
                    f"numbers, strings, None, and dicts, lists and tuples of them")


# ------------------------------------------------------------------ load
def load(path, max_bytes=DEFAULT_MAX_BYTES):
    """Read what :func:`save` wrote: the same structure, with ndarrays for arrays.

    Refuses (``ValueError``, saying which) a file that is not a zip archive
    (a ``.npy``, say), one whose members would expand beyond ``max_bytes``, a
    member that is truncated or corrupt, one that is not an array, and object
    arrays (which would need pickle, never run here).
    """
    if is_safetensors(path):   # a flat dict of arrays (autonet.interop)
        return load_safetensors(path, max_bytes)
    if max_bytes <= 0:
        raise ValueError(f"load: max_bytes must be positive, not {max_bytes}")
    path = os.fspath(path)
    if not zipfile.is_zipfile(path):
        raise ValueError(f"load: {path!r} is not an .npz archive (a .npy file? read it with "
                         f"numpy.load(path, allow_pickle=False))")
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            expanded = sum(member.file_size for member in members)
            if expanded > max_bytes:
                raise ValueError(f"load: {path!r} would expand to {expanded:,} bytes, more than "
                                 f"max_bytes={max_bytes:,}; pass a larger max_bytes if you trust it")
            names = [member.filename for member in members]
            if _MANIFEST not in names:   # a plain .npz of arrays
                return {name[:-4] if name.endswith(".npy") else name: _read_array(archive, member)
                        for name, member in zip(names, members)}
            manifest = json.loads(archive.read(_MANIFEST))
            arrays = {name: _read_array(archive, member)
                      for name, member in zip(names, members) if name != _MANIFEST}
    except zipfile.BadZipFile as error:
        raise ValueError(f"load: {path!r} is truncated or corrupt ({error})") from None
    if manifest.get("format") != _FORMAT:
        raise ValueError(f"load: {path!r} has format {manifest.get('format')!r}; this autonet "
                         f"reads format {_FORMAT}")
    return _decode(manifest["tree"], arrays)


def _read_array(archive, member):
    """One ``.npy`` member, checked: an array of numbers, as long as its header says."""
    name = member.filename
    with archive.open(member) as file:
        try:
            version = np.lib.format.read_magic(file)
        except ValueError:
            raise ValueError(f"load: member {name!r} is not an array") from None
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran_order, dtype = read_header(file)
        if dtype.hasobject:
            raise ValueError(f"load: member {name!r} is an object array, which would need pickle; "
                             f"autonet files hold numeric arrays only")
        expected = math.prod(shape) * dtype.itemsize
        data = file.read(expected + 1)
    if len(data) != expected:
        raise ValueError(f"load: member {name!r} is truncated: {len(data):,} bytes of data where "
                         f"its header promises {expected:,}")
    array = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")
    return array.copy()   # writeable, and owning its memory


def _decode(node, arrays):
    (kind, value), = node.items()
    if kind == "array":
        return arrays[f"arrays/{value}.npy"]
    if kind == "dict":
        return {_decode(key, arrays): _decode(item, arrays) for key, item in value}
    if kind in ("list", "tuple"):
        items = [_decode(item, arrays) for item in value]
        return items if kind == "list" else tuple(items)
    return value   # none, bool, int, float, str: JSON keeps them as they were
