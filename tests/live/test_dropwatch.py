"""Live drops: known loopback traffic, traced with in-kernel filters, read back."""

import threading
import time

import pytest

from bpfnb import traffic
from bpfnb.dropwatch import DropFilters, resolve_filters, watch_drops
from bpfnb.errors import BpfnbError
from bpfnb.frames.drops import SCHEMA


def _send_later(fn, delay=0.6):
    t = threading.Thread(target=lambda: (time.sleep(delay), fn()))
    t.start()
    return t


@pytest.mark.kernel
def test_udp_drops_to_one_port_with_in_kernel_filters():
    port = traffic.closed_port()
    payload = b"bpfnb-dropwatch"
    sender = _send_later(lambda: (traffic.udp_to_closed_port(20, port=port, payload=payload),
                                  traffic.tcp_to_closed_port(3)))  # the TCP drops are filtered out
    frame = watch_drops(2.5, proto="udp", port=port, reason="NO_SOCKET")
    sender.join()
    assert tuple(frame.columns) == SCHEMA
    assert len(frame) == 20 and frame.attrs["lost"] == 0
    assert set(frame["reason"]) == {"NO_SOCKET"} and set(frame["l4proto"]) == {"udp"}
    assert set(frame["dport"]) == {port} and set(frame["len"]) == {8 + len(payload)}
    assert set(frame["ifname"]) == {"lo"} and set(frame["ifindex"]) == {1}
    assert all(p.endswith(payload) for p in frame["packet"])  # captured from the UDP header on
    assert frame.attrs["filters"]["port"] == port


@pytest.mark.kernel
def test_a_reason_filter_that_matches_nothing_gives_an_empty_frame_with_the_schema():
    sender = _send_later(lambda: traffic.udp_to_closed_port(5))
    frame = watch_drops(1.5, reason="SOCKET_RCVBUFF", port=1)
    sender.join()
    assert len(frame) == 0 and tuple(frame.columns) == SCHEMA


def test_filters_from_names():
    f = resolve_filters(proto="tcp", port=80, snap_len=128)
    assert f == DropFilters(0, 0, 6, 80, 128)
    with pytest.raises(BpfnbError, match="unknown protocol 'sctp2'"):
        resolve_filters(proto="sctp2")
    with pytest.raises(BpfnbError, match="port 70000"):
        resolve_filters(port=70000)


@pytest.mark.kernel
def test_reason_names_come_from_the_kernel_btf():
    from bpfnb.btf import kernel_btf

    btf = kernel_btf()
    values = {v.name: v.value for v in btf.type(btf.find("skb_drop_reason", "enum")).values}
    assert resolve_filters(reason="NO_SOCKET").reason == values["SKB_DROP_REASON_NO_SOCKET"]
    with pytest.raises(BpfnbError, match="unknown drop reason 'NO_SUCH_THING'"):
        resolve_filters(reason="NO_SUCH_THING")
