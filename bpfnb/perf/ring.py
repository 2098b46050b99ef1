"""Reading and writing perf rings: one reader for the kernel's mmap'd rings and
for ``SimRing``, the ring bpfnb's VM writes into."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BpfnbError
from .layout import (
    DATA_HEAD,
    DATA_OFFSET,
    DATA_SIZE,
    DATA_TAIL,
    HEADER,
    LOST,
    PERF_RECORD_LOST,
    PERF_RECORD_SAMPLE,
    RAW_SIZE,
    U64,
)

PAGE = 4096


@dataclass
class Records:
    """What a read found: raw sample payloads and the count of lost records."""

    samples: list[bytes]
    lost: int = 0


def _copy(buf, data_offset: int, data_size: int, pos: int, length: int) -> bytes:
    start = pos % data_size
    end = start + length
    base = data_offset
    if end <= data_size:
        return bytes(buf[base + start: base + end])
    return bytes(buf[base + start: base + data_size]) + bytes(buf[base: base + end - data_size])


def read_ring(buf) -> Records:
    """Consume every record between ``data_tail`` and ``data_head`` of ``buf``
    (an mmap or a bytearray laid out as the kernel's ring) and advance the tail."""
    head = U64.unpack_from(buf, DATA_HEAD)[0]
    tail = U64.unpack_from(buf, DATA_TAIL)[0]
    data_offset = U64.unpack_from(buf, DATA_OFFSET)[0] or PAGE
    data_size = U64.unpack_from(buf, DATA_SIZE)[0] or (len(buf) - PAGE)
    if data_size <= 0 or data_size & (data_size - 1):
        raise BpfnbError(f"perf ring: data size {data_size} is not a power of two")
    if head - tail > data_size:
        raise BpfnbError(f"perf ring: head {head} is {head - tail} bytes past the tail (size {data_size})")
    out = Records([])
    pos = tail
    while pos < head:
        kind, _misc, size = HEADER.unpack(_copy(buf, data_offset, data_size, pos, HEADER.size))
        if size < HEADER.size or pos + size > head:
            raise BpfnbError(f"perf ring: record at {pos} has size {size}")
        body = _copy(buf, data_offset, data_size, pos + HEADER.size, size - HEADER.size)
        if kind == PERF_RECORD_SAMPLE:
            (raw_size,) = RAW_SIZE.unpack_from(body)
            out.samples.append(body[RAW_SIZE.size: RAW_SIZE.size + raw_size])
        elif kind == PERF_RECORD_LOST:
            out.lost += LOST.unpack_from(body)[1]
        pos += size
    U64.pack_into(buf, DATA_TAIL, head)
    return out


class SimRing:
    """A perf ring in a bytearray, written like the kernel writes its rings
    (records padded to 8 bytes, wrap-around, LOST records on overflow)."""

    def __init__(self, pages: int = 8):
        if pages <= 0 or pages & (pages - 1):
            raise BpfnbError(f"SimRing: {pages} data pages is not a power of two")
        self.size = pages * PAGE
        self.buf = bytearray(PAGE + self.size)
        U64.pack_into(self.buf, DATA_OFFSET, PAGE)
        U64.pack_into(self.buf, DATA_SIZE, self.size)
        self._pending_lost = 0

    @property
    def head(self) -> int:
        return U64.unpack_from(self.buf, DATA_HEAD)[0]

    @property
    def tail(self) -> int:
        return U64.unpack_from(self.buf, DATA_TAIL)[0]

    def _put(self, record: bytes) -> bool:
        head = self.head
        if head + len(record) - self.tail > self.size:
            return False
        start = head % self.size
        first = min(len(record), self.size - start)
        self.buf[PAGE + start: PAGE + start + first] = record[:first]
        if first < len(record):
            self.buf[PAGE: PAGE + len(record) - first] = record[first:]
        U64.pack_into(self.buf, DATA_HEAD, head + len(record))
        return True

    def output(self, raw: bytes) -> bool:
        """Append a ``PERF_RECORD_SAMPLE`` holding ``raw``; False (and counted lost) when full."""
        if self._pending_lost:
            lost = HEADER.pack(PERF_RECORD_LOST, 0, HEADER.size + LOST.size) + LOST.pack(0, self._pending_lost)
            if not self._put(lost):
                self._pending_lost += 1
                return False
            self._pending_lost = 0
        body = RAW_SIZE.pack(len(raw)) + raw
        body += b"\0" * (-(HEADER.size + len(body)) % 8)
        if not self._put(HEADER.pack(PERF_RECORD_SAMPLE, 0, HEADER.size + len(body)) + body):
            self._pending_lost += 1
            return False
        return True

    def read(self) -> Records:
        return read_ring(self.buf)
