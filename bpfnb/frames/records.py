"""Records emitted by BPF programs, decoded in bulk through BTF.

A BTF struct (found by name in the program's BTF) becomes a numpy
structured dtype with the struct's own offsets; a batch of samples —
one contiguous buffer plus each record's start offset — is gathered with a
single fancy index and viewed through that dtype, so decoding a million
records is a handful of numpy operations, not a Python loop per field.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import BtfError

_INT = {(1, False): "u1", (2, False): "<u2", (4, False): "<u4", (8, False): "<u8",
        (1, True): "i1", (2, True): "<i2", (4, True): "<i4", (8, True): "<i8"}


def _scalar_format(btf, type_id: int) -> str | tuple | np.dtype | None:
    """The numpy format of a non-struct member, or None when it has none."""
    t = btf.type(btf.resolve(type_id))
    if t.kind == "int":
        if t.size == 1 and getattr(t, "int_char", False):
            return "u1"
        return _INT.get((t.size, bool(t.int_signed)))
    if t.kind in ("enum", "enum64"):
        signed = bool(getattr(t, "kflag", False))
        return _INT.get((t.size, signed))
    if t.kind == "ptr":
        return "<u8"
    if t.kind == "float":
        return {4: "<f4", 8: "<f8"}.get(t.size)
    if t.kind == "array":
        elem = btf.type(btf.resolve(t.elem_type))
        if elem.kind == "int" and elem.size == 1:
            return f"S{t.nelems}"  # char[N] / u8[N]: raw bytes, decoded later
        inner = _scalar_format(btf, t.elem_type)
        if inner is None:
            return None
        return (inner, (t.nelems,))
    if t.kind in ("struct", "union"):
        return struct_dtype(btf, t.id)
    return None


def struct_dtype(btf, type_ref) -> np.dtype:
    """A structured dtype laid out exactly as the BTF struct (bitfields left out)."""
    type_id = btf.find(type_ref, "struct") if isinstance(type_ref, str) else type_ref
    t = btf.type(btf.resolve(type_id))
    if t.kind not in ("struct", "union"):
        raise BtfError(f"{btf.name_of(type_id)} is not a struct or union")
    names, formats, offsets = [], [], []
    for m in t.members:
        if m.bitfield_size or m.bit_offset % 8:
            continue
        fmt = _scalar_format(btf, m.type)
        if fmt is None or not m.name:
            continue
        names.append(m.name)
        formats.append(fmt)
        offsets.append(m.bit_offset // 8)
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": t.size})


def gather(buffer, starts: np.ndarray, itemsize: int) -> np.ndarray:
    """Rows of ``itemsize`` bytes taken from ``buffer`` at each start offset."""
    data = np.frombuffer(buffer, dtype=np.uint8)
    starts = np.asarray(starts, dtype=np.int64)
    if len(starts) and (starts.min() < 0 or starts.max() + itemsize > len(data)):
        raise ValueError("a record runs past the end of the buffer")
    rows = np.empty((len(starts), itemsize), dtype=np.uint8)
    for column in range(itemsize):  # one gather per byte column: no index matrix
        rows[:, column] = data[starts + column]
    return rows


def decode(buffer, starts: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Structured array of the records at ``starts`` in ``buffer``."""
    rows = gather(buffer, starts, dtype.itemsize)
    return rows.view(dtype).reshape(len(starts))


def decode_samples(samples: list[bytes], dtype: np.dtype) -> np.ndarray:
    """Structured array of the record at the head of each sample.

    Every sample must hold at least ``dtype.itemsize`` bytes (the caller
    checks, to name the bad one).
    """
    size = dtype.itemsize
    heads = b"".join([raw[:size] for raw in samples])
    return np.frombuffer(heads, dtype=dtype, count=len(samples)) if samples else np.zeros(0, dtype)


def columns(records: np.ndarray, btf=None, type_ref=None) -> dict[str, object]:
    """Flat DataFrame columns of decoded records: char arrays as text, enum
    members as categoricals named from the BTF, nested structs dotted."""
    enum_names: dict[str, dict[int, str]] = {}
    if btf is not None and type_ref is not None:
        type_id = btf.find(type_ref, "struct") if isinstance(type_ref, str) else type_ref
        for m in btf.type(btf.resolve(type_id)).members:
            mt = btf.type(btf.resolve(m.type))
            if mt.kind in ("enum", "enum64") and m.name:
                enum_names[m.name] = {v.value: v.name for v in mt.values}
    out: dict[str, object] = {}

    def walk(arr: np.ndarray, prefix: str) -> None:
        for name in arr.dtype.names:
            col = arr[name]
            key = prefix + name
            if col.dtype.names:
                walk(col, key + ".")
            elif col.dtype.kind == "S":
                out[key] = pd.array(np.char.decode(col, "latin-1"), dtype="string")
            elif col.ndim > 1:
                out[key] = list(col)
            elif not prefix and name in enum_names:
                out[key] = pd.Categorical.from_codes(
                    *_codes(col, enum_names[name])
                )
            else:
                out[key] = col
    walk(records, "")
    return out


def _codes(values: np.ndarray, names: dict[int, str]):
    """Category codes for enum values (unknown values become ``value N``)."""
    distinct = np.unique(values)
    labels = [names.get(int(v), f"value {int(v)}") for v in distinct]
    codes = np.searchsorted(distinct, values)
    # Categories must be unique: equal names for different values keep the first.
    seen: dict[str, int] = {}
    remap = np.empty(len(labels), dtype=np.int64)
    cats: list[str] = []
    for i, label in enumerate(labels):
        if label not in seen:
            seen[label] = len(cats)
            cats.append(label)
        remap[i] = seen[label]
    return remap[codes], cats
