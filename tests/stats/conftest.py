"""A corpus directory of the committed objects (the fixtures and the examples)."""

from __future__ import annotations

import pathlib
import shutil

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
# named, so that fixtures other tests add do not change the counts asserted here
FIXTURE_NAMES = ("bpf2bpf", "fentry", "globals", "kfree_skb", "raw_tp", "socket_filter", "tail_call",
                 "tracing", "xdp")
EXAMPLE_NAMES = ("count_protocols", "count_protocols_nocheck", "typecast", "typecast_ok")
OBJECTS = [ROOT / "tests" / "fixtures" / f"{n}.bpf.o" for n in FIXTURE_NAMES] + \
    [ROOT / "bpfnb" / "data" / "examples" / f"{n}.bpf.o" for n in EXAMPLE_NAMES]
NOT_ELF = b"this is not an ELF object\n"


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> pathlib.Path:
    """Every committed object, one directory level down for some (names are relative
    paths), plus ``broken/bad.o`` that is not an object at all."""
    root = tmp_path_factory.mktemp("corpus")
    for path in OBJECTS:
        where = root / ("examples" if path.parent.name == "examples" else "fixtures")
        where.mkdir(exist_ok=True)
        shutil.copy(path, where / path.name)
    (root / "broken").mkdir()
    (root / "broken" / "bad.o").write_bytes(NOT_ELF)
    return root
