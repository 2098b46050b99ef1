"""Live drops: known loopback traffic, traced with in-kernel filters, read back."""

import threading

import pytest

from bpfnb import traffic
from bpfnb.dropwatch import DropFilters, resolve_filters, watch_drops
from bpfnb.errors import BpfnbError
from bpfnb.frames.drops import SCHEMA

CEILING_S = 60.0  # a watch ends on its stop signal; this only bounds a broken one


def watch_while(send, expected: int | None = None, **filters):
    """``watch_drops`` with ``send`` run once the tracer is attached (its ``attached``
    signal, never a fixed sleep); the watch stops when ``expected`` drops have been
    read, or (``expected`` None) when the sender is done. The sender thread is joined."""
    attached, stop, sent = threading.Event(), threading.Event(), threading.Event()
    failure = []

    def sender():
        try:
            if attached.wait(CEILING_S):
                send()
        except Exception as exc:  # reported by the test, not lost in the thread
            failure.append(exc)
        finally:
            sent.set()
            if expected is None or failure:
                stop.set()

    def progress(counts, lost, elapsed):
        if expected is not None and sum(counts.values()) >= expected:
            stop.set()

    thread = threading.Thread(target=sender)
    thread.start()
    try:
        frame = watch_drops(CEILING_S, attached=attached, stop=stop, on_progress=progress, **filters)
    finally:
        attached.set()  # a watch that failed before attaching must not leave the sender waiting
        thread.join()
    assert not failure, failure
    return frame


@pytest.mark.kernel
def test_udp_drops_to_one_port_with_in_kernel_filters():
    port = traffic.closed_port()
    payload = b"bpfnb-dropwatch"
    frame = watch_while(lambda: (traffic.udp_to_closed_port(20, port=port, payload=payload),
                                 traffic.tcp_to_closed_port(3)),  # the TCP drops are filtered out
                        expected=20, proto="udp", port=port, reason="NO_SOCKET")
    assert tuple(frame.columns) == SCHEMA
    assert len(frame) == 20 and frame.attrs["lost"] == 0
    assert set(frame["reason"]) == {"NO_SOCKET"} and set(frame["l4proto"]) == {"udp"}
    assert set(frame["dport"]) == {port} and set(frame["len"]) == {8 + len(payload)}
    assert set(frame["ifname"]) == {"lo"} and set(frame["ifindex"]) == {1}
    assert all(p.endswith(payload) for p in frame["packet"])  # captured from the UDP header on
    assert frame.attrs["filters"]["port"] == port


@pytest.mark.kernel
def test_a_reason_filter_that_matches_nothing_gives_an_empty_frame_with_the_schema():
    frame = watch_while(lambda: traffic.udp_to_closed_port(5), reason="SOCKET_RCVBUFF", port=1)
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
