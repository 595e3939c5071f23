"""save / load: nested state (models, optimizers, counters) as ``.npz`` archives, never pickle.

An archive is a zip of ``.npy`` members, every one an array: each array of the
state under its key path (``model/hidden.weight.npy``, so ``numpy.load`` lists
the names), and one string array, ``autonet.npy``, holding the structure as
JSON: dicts (string or int keys, any string), lists, tuples, numbers, strings,
None, and the names of the array members. ``load`` checks that structure
before trusting any of it. Plain ``.npz`` files of arrays (``numpy.savez``)
load as ``{name: array}``; archives of autonet's first format still load.

>>> import os, tempfile, numpy as np, autonet
>>> path = os.path.join(tempfile.mkdtemp(), "checkpoint.npz")
>>> autonet.save({"epoch": 3, "state": {0: {"buffer": np.ones(2)}}}, path)
>>> autonet.load(path)
{'epoch': 3, 'state': {0: {'buffer': array([1., 1.])}}}
>>> sorted(np.load(path))
['autonet', 'state/0/buffer']
"""
from __future__ import annotations

import json
import math
import os
import zipfile
import zlib
from typing import Any

import numpy as np

from .files import write_atomically
from .interop import is_safetensors, load_safetensors, save_safetensors
from .core import device as devices
from .core.tensor import Tensor
from .core.types import PathLike

DEFAULT_MAX_BYTES = 2 ** 31
"""``load`` refuses archives whose members would expand beyond this (2 GiB) unless told."""

_MANIFEST = "autonet.npy"          # format 2: a 0-d string array of JSON
_OLD_MANIFEST = "autonet.json"     # format 1: JSON bytes, arrays as ``arrays/<n>.npy``
_FORMAT = 2
_SAVED_KINDS = "biuf"              # bool, integer and floating arrays; nothing else is written or read
_MAX_NAME_BYTES = 1024             # of a member's name (the manifest keeps the whole key)
_MAX_DEPTH = 100                   # nesting a manifest may have (deeper is refused, not a RecursionError)


# ------------------------------------------------------------------ save
def save(obj: Any, path: PathLike) -> None:
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
    arrays: dict[str, Any] = {}
    tree = _encode(obj, arrays, "obj", ())
    manifest = np.array(json.dumps({"format": _FORMAT, "tree": tree}))

    def write(file):
        with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name, array in [(_MANIFEST, manifest), *arrays.items()]:
                with archive.open(name, "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)

    write_atomically(path, write)


def _encode(value, arrays, where, path):
    """``value`` as JSON-able data; arrays go to ``arrays`` under a member name made of their
    key ``path`` (made unique), referenced by that name."""
    if len(path) > _MAX_DEPTH:   # load refuses such a file; a container holding itself ends here too
        raise ValueError(f"save: {where[:60]}... nests deeper than {_MAX_DEPTH} levels (or holds "
                         f"itself), which load refuses")
    if isinstance(value, Tensor):
        value = value.data
    if devices.is_foreign(value):
        value = devices.to_host(value)   # saved from its device to the host, explicitly
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in _SAVED_KINDS:
            raise TypeError(f"save: {where} holds {value.dtype} data; only numeric arrays are saved")
        name = _member_name(path, arrays)
        arrays[name] = value
        return {"array": name}
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
            items.append([tagged, _encode(item, arrays, f"{where}[{key!r}]", path + (str(key),))])
        return {"dict": items}
    if isinstance(value, (list, tuple)):
        kind = "list" if isinstance(value, list) else "tuple"
        return {kind: [_encode(item, arrays, f"{where}[{i}]", path + (str(i),))
                       for i, item in enumerate(value)]}
    raise TypeError(f"save: {where} is a {type(value).__name__}; save takes arrays, Tensors, "
                    f"numbers, strings, None, and dicts, lists and tuples of them")


def _member_name(path, taken):
    """``model/hidden.weight.npy`` for the key path; ``~2``, ``~3``... where keys holding ``/``
    would make two paths alike (the manifest records the name actually used)."""
    stem = _zip_safe("/".join(path))
    name, number = f"{stem}.npy", 1
    while name in taken or name in (_MANIFEST, _OLD_MANIFEST):
        number += 1
        name = f"{stem}~{number}.npy"
    return name



def _zip_safe(stem):
    """``stem`` as a zip member name that reads back the same: NUL (zip readers cut names
    there) and lone surrogates (not UTF-8) escaped, cut to 1,024 bytes (zip's limit is 65,535)."""
    stem = stem.replace("\x00", "\\x00").encode("utf-8", "backslashreplace")
    return stem[:_MAX_NAME_BYTES].decode("utf-8", "ignore")


# ------------------------------------------------------------------ load
def load(path: PathLike, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """Read what :func:`save` wrote: the same structure, with ndarrays for arrays.

    Refuses (``ValueError``, saying which) a file that is not a zip archive
    (a ``.npy``, say), one whose members would expand beyond ``max_bytes``, a
    member that is truncated or corrupt, one that is not an array, arrays
    other than bool, integer or floating point (object arrays would need
    pickle, never run here; complex, structured, string and datetime arrays
    are refused as ``save`` refuses them), and a manifest that is not exactly
    what ``save`` writes. Damaged bytes of any kind give that ``ValueError``
    too; a missing path or a directory raise ``open``'s own
    ``FileNotFoundError`` / ``IsADirectoryError``, as ``numpy.load`` and
    ``torch.load`` do.
    """
    if not isinstance(max_bytes, (int, np.integer)) or isinstance(max_bytes, bool) or max_bytes <= 0:
        # NaN compared False with every size: the limit was off
        raise ValueError(f"load: max_bytes must be a positive int, not {max_bytes!r}")
    if is_safetensors(path):   # a flat dict of arrays (autonet.interop)
        return load_safetensors(path, max_bytes)
    path = os.fspath(path)
    with open(path, "rb") as file:   # a missing path or a directory: its own OSError says so
        if not zipfile.is_zipfile(file):
            raise ValueError(f"load: {path!r} is not an .npz archive ({_what_else(file)})")
        try:
            manifest, references, arrays = _read_archive(file, path, max_bytes)
        except _CORRUPT as error:
            raise ValueError(f"load: {path!r} is truncated or corrupt "
                             f"({type(error).__name__}: {error})") from None
    if manifest is None:   # a plain .npz of arrays
        return {name[:-4] if name.endswith(".npy") else name: array for name, array in arrays.items()}
    tree = _checked_manifest(manifest, path)
    return _decode(tree, arrays, references, path, 0)


def _what_else(file):
    """A guess at what a file that is no zip archive is, and what to do with it."""
    file.seek(0)
    head = file.read(9)
    if head[:6] == b"\x93NUMPY":
        return "a .npy file: read it with numpy.load(path, allow_pickle=False)"
    if len(head) == 9 and head[8:9] == b"{":   # 8 bytes of header size, then its JSON
        return "a safetensors file? give its name the .safetensors suffix"
    return "a .npy file? read it with numpy.load(path, allow_pickle=False)"


# What zipfile and zlib raise on damaged bytes (RuntimeError covers an "encrypted" flag and
# NotImplementedError, raised for a made-up version or compression method).
_CORRUPT = (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, OSError)


def _read_archive(file, path, max_bytes):
    """The manifest, its reference rule and every array member of the open archive ``file``."""
    with zipfile.ZipFile(file) as archive:
        members = archive.infolist()
        expanded = sum(member.file_size for member in members)
        if expanded > max_bytes:
            raise ValueError(f"load: {path!r} would expand to {expanded:,} bytes, more than "
                             f"max_bytes={max_bytes:,}; pass a larger max_bytes if you trust it")
        names = [member.filename for member in members]
        if any(name == "data.pkl" or name.endswith("/data.pkl") for name in names):
            raise ValueError(f"load: {path!r} is a PyTorch checkpoint (torch.save: pickle, which "
                             f"autonet never runs); in PyTorch, write it with safetensors.torch."
                             f"save_file(state_dict, 'model.safetensors') and load that file")
        manifest, references = _read_manifest(archive, names)
        arrays = {member.filename: _read_array(archive, member) for member in members
                  if member.filename not in (_MANIFEST, _OLD_MANIFEST)}
    return manifest, references, arrays


def _read_manifest(archive, names):
    """The manifest's text (None for a plain .npz) and how it names array members."""
    if _MANIFEST in names:
        member = archive.getinfo(_MANIFEST)
        text = _read_array(archive, member, kinds="U")
        if text.shape != ():
            raise ValueError(f"load: member {_MANIFEST!r} must hold one string, not shape {text.shape}")
        return str(text), lambda name: name if type(name) is str else None
    if _OLD_MANIFEST in names:   # format 1
        return archive.read(_OLD_MANIFEST), \
            lambda number: f"arrays/{number}.npy" if type(number) is int else None
    return None, None


def _checked_manifest(text, path):
    """The manifest's tree, after checking the JSON and its format number."""
    try:
        manifest = json.loads(text)
    except (ValueError, RecursionError) as error:   # JSONDecodeError, bad UTF-8, absurd nesting
        raise ValueError(f"load: {path!r} has a manifest that is not valid JSON "
                         f"({type(error).__name__}: {str(error)[:100]})") from None
    if not isinstance(manifest, dict) or set(manifest) != {"format", "tree"}:
        raise ValueError(f"load: {path!r} has a manifest without exactly 'format' and 'tree'")
    if manifest["format"] not in (1, _FORMAT) or type(manifest["format"]) is not int:
        raise ValueError(f"load: {path!r} has format {manifest['format']!r}; this autonet reads "
                         f"formats 1 and {_FORMAT}")
    tree = manifest["tree"]
    if not (isinstance(tree, dict) and list(tree) == ["dict"]):
        raise ValueError(f"load: {path!r} does not hold a dict at its top (save writes only dicts)")
    return tree


_LEAVES = {"none": lambda v: v is None, "bool": lambda v: type(v) is bool,
           "int": lambda v: type(v) is int, "float": lambda v: type(v) in (int, float),
           "str": lambda v: type(v) is str}


def _decode(node, arrays, references, path, depth):
    """One node of the manifest's tree, each checked to be exactly what ``save`` writes."""
    if depth > _MAX_DEPTH:
        raise ValueError(f"load: {path!r} nests deeper than {_MAX_DEPTH} levels")
    if not (isinstance(node, dict) and len(node) == 1):
        raise ValueError(f"load: {path!r} has a malformed manifest entry {_shown(node)}")
    (kind, value), = node.items()
    if kind in _LEAVES:
        if not _LEAVES[kind](value):
            raise ValueError(f"load: {path!r} has a malformed {kind!r} entry {_shown(value)}")
        return float(value) if kind == "float" else value
    if kind == "array":
        name = references(value)
        if name not in arrays:   # popped: a member referred to twice is refused too (no aliasing)
            raise ValueError(f"load: {path!r} refers to an array member {_shown(value)} it does not "
                             f"hold (or refers to it twice)")
        return arrays.pop(name)
    if kind in ("list", "tuple") and isinstance(value, list):
        items = [_decode(item, arrays, references, path, depth + 1) for item in value]
        return items if kind == "list" else tuple(items)
    if kind == "dict" and isinstance(value, list):
        return dict(_decode_item(item, arrays, references, path, depth) for item in value)
    raise ValueError(f"load: {path!r} has a malformed manifest entry {_shown(node)}")


def _decode_item(item, arrays, references, path, depth):
    if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], dict)
            and len(item[0]) == 1 and list(item[0]) in (["str"], ["int"])):
        raise ValueError(f"load: {path!r} has a malformed dict entry {_shown(item)}")
    key = _decode(item[0], arrays, references, path, depth + 1)
    return key, _decode(item[1], arrays, references, path, depth + 1)


def _shown(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _read_array(archive, member, kinds=_SAVED_KINDS):
    """One ``.npy`` member, checked: an array of ``kinds``, as long as its header says."""
    name = member.filename
    with archive.open(member) as file:
        try:
            version = np.lib.format.read_magic(file)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran_order, dtype = read_header(file)
        except ValueError:
            raise ValueError(f"load: member {name!r} is not an array") from None
        if dtype.hasobject:
            raise ValueError(f"load: member {name!r} is an object array, which would need pickle; "
                             f"autonet files hold numeric arrays only")
        if dtype.kind not in kinds or dtype.fields is not None:
            raise ValueError(f"load: member {name!r} holds {dtype} data; autonet files hold bool, "
                             f"integer and floating-point arrays only (as save writes)")
        expected = math.prod(shape) * dtype.itemsize
        data = file.read(expected + 1)
    if len(data) != expected:
        raise ValueError(f"load: member {name!r} is truncated: {len(data):,} bytes of data where "
                         f"its header promises {expected:,}")
    array = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")
    return array.copy()   # writeable, and owning its memory
