"""One reader for the kernel's rings and SimRing: records, wrap-around, lost."""

import pytest

from bpfnb.errors import BpfnbError
from bpfnb.perf import SimRing, read_ring
from bpfnb.perf.layout import DATA_HEAD, DATA_TAIL, U64


def test_samples_come_back_in_order_with_their_bytes():
    ring = SimRing(pages=1)
    payloads = [bytes([i]) * (i + 1) for i in range(20)]
    for p in payloads:
        assert ring.output(p)
    got = ring.read()
    assert got.samples == payloads and got.lost == 0
    assert ring.tail == ring.head and ring.read().samples == []


def test_records_wrap_around_the_end_of_the_data_area():
    ring = SimRing(pages=1)  # 4096 bytes
    chunk = b"x" * 1000  # 1016-byte records: the fifth crosses the end
    seen = []
    for round_ in range(12):
        payload = bytes([round_]) + chunk[1:]
        assert ring.output(payload)
        assert ring.output(payload[::-1])
        seen.extend(ring.read().samples)
    assert len(seen) == 24 and ring.head > 4 * 4096
    assert all(len(s) == 1000 for s in seen)
    assert seen[2 * 7][0] == 7 and seen[2 * 7 + 1][-1] == 7


def test_a_full_ring_counts_lost_samples_and_reports_them():
    ring = SimRing(pages=1)
    accepted = sum(ring.output(b"y" * 500) for _ in range(20))
    assert 0 < accepted < 20
    first = ring.read()
    assert len(first.samples) == accepted and first.lost == 0
    assert ring.output(b"z")  # writes the LOST record first, then the sample
    second = ring.read()
    assert second.lost == 20 - accepted and second.samples == [b"z"]


def test_a_corrupt_ring_is_an_error_not_a_hang():
    ring = SimRing(pages=1)
    ring.output(b"abc")
    U64.pack_into(ring.buf, DATA_HEAD, 10**9)
    with pytest.raises(BpfnbError, match="past the tail"):
        read_ring(ring.buf)
    U64.pack_into(ring.buf, DATA_HEAD, 16)
    U64.pack_into(ring.buf, DATA_TAIL, 0)
    ring.buf[4096 + 6: 4096 + 8] = b"\0\0"  # record size 0
    with pytest.raises(BpfnbError, match="has size 0"):
        read_ring(ring.buf)


def test_pages_must_be_a_power_of_two():
    with pytest.raises(BpfnbError, match="power of two"):
        SimRing(pages=3)
