"""Shared fixtures: paths to the built BPF objects and the kernel gate."""

from __future__ import annotations

import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
# the vectors live beside the project (../shared/conformance); a clone elsewhere
# finds them through BPFNB_CONFORMANCE or the workplace's fixed location
CONFORMANCE = next(
    (p for p in (pathlib.Path(os.environ.get("BPFNB_CONFORMANCE", "/nonexistent")),
                 ROOT.parent / "shared" / "conformance", pathlib.Path("/work/shared/conformance"))
     if p.is_dir()),
    ROOT.parent / "shared" / "conformance",
)


def _kernel_reason() -> str | None:
    try:
        from bpfnb.kernel import available
    except ImportError as exc:  # the bridge not built yet
        return f"bpfnb.kernel not importable: {exc}"
    return available()


def pytest_collection_modifyitems(config, items):
    reason = None
    checked = False
    for item in items:
        if "kernel" in item.keywords:
            if not checked:
                reason, checked = _kernel_reason(), True
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def fixtures_dir() -> pathlib.Path:
    return FIXTURES


@pytest.fixture(scope="session")
def conformance_dir() -> pathlib.Path:
    if not CONFORMANCE.is_dir():
        pytest.skip(f"conformance data not found at {CONFORMANCE}")
    return CONFORMANCE
