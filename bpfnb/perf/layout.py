"""The kernel's perf ring layout, described once (include/uapi/linux/perf_event.h).

A ring is one metadata page (``struct perf_event_mmap_page``: the producer's
``data_head`` and the consumer's ``data_tail`` at fixed offsets) followed by
a power-of-two data area of records, each ``struct perf_event_header``
(type, misc, size) then its body. BPF output arrives as ``PERF_RECORD_SAMPLE``
with ``PERF_SAMPLE_RAW`` (``u32 size`` then the bytes, padded to 8);
overflow as ``PERF_RECORD_LOST`` (``u64 id, u64 lost``).
"""

from __future__ import annotations

import struct

# struct perf_event_mmap_page: the fields a reader needs, at their offsets
DATA_HEAD = 1024
DATA_TAIL = 1032
DATA_OFFSET = 1040
DATA_SIZE = 1048
U64 = struct.Struct("<Q")

HEADER = struct.Struct("<IHH")  # perf_event_header: type, misc, size
RAW_SIZE = struct.Struct("<I")
LOST = struct.Struct("<QQ")  # id, lost

PERF_RECORD_LOST = 2
PERF_RECORD_SAMPLE = 9
PERF_TYPE_SOFTWARE = 1
PERF_COUNT_SW_BPF_OUTPUT = 10
PERF_SAMPLE_RAW = 1 << 10
PERF_FLAG_FD_CLOEXEC = 1 << 3
PERF_EVENT_IOC_ENABLE = 0x2400
PERF_EVENT_IOC_DISABLE = 0x2401
