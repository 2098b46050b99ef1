"""``bpfnb trace drops --out DIR/ --lines``: a dataset written while the trace runs, one
line per drop. Traffic is sent at the first poll of the rings (the tracer is attached)."""

import pytest

from bpfnb import traffic
from bpfnb.cli import main
from bpfnb.cli import trace as trace_cli
from bpfnb.frames import open_drops

PACKETS = 5
PAYLOAD = b"bpfnb-lines"


@pytest.mark.kernel
def test_trace_drops_writes_a_dataset_and_prints_a_line_per_drop(tmp_path, monkeypatch, capsys):
    port = traffic.closed_port()
    sent = []

    def send_once_attached(counts, lost, elapsed):
        if not sent:
            sent.append(traffic.udp_to_closed_port(PACKETS, port=port, payload=PAYLOAD))

    monkeypatch.setattr(trace_cli, "_progress", send_once_attached)
    out = tmp_path / "drops"
    assert main(["trace", "drops", "--seconds", "3", "--port", str(port), "--lines", "--out", f"{out}/"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0].split() == ["TIME", "CPU", "IFACE", "LEN", "TUPLE", "REASON"]
    lines = [line for line in text if f"->127.0.0.1:{port}(udp)" in line]
    assert len(lines) == PACKETS
    assert all(line.split()[2:4] == ["lo", str(8 + len(PAYLOAD))] and line.endswith("NO_SOCKET") for line in lines)
    assert f"{PACKETS} drops, 0 lost" in text
    drops = open_drops(out)
    assert len(drops) == PACKETS and set(drops["dport"]) == {port} and set(drops["reason"]) == {"NO_SOCKET"}
    assert all(p.endswith(PAYLOAD) for p in drops["packet"])
