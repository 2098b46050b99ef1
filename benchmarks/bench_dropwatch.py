"""Live drop tracing: sustained event rate and lost samples.

A sender thread fires UDP datagrams at a closed loopback port as fast as it
can for two seconds while ``watch_drops`` traces them (filtered to that port
in the kernel). Figures: datagrams sent per second (the reference, measured
in the same run), drops traced per second, and samples lost.
"""

from __future__ import annotations

import socket
import threading
import time

from bpfnb import traffic
from bpfnb.kernel import available


def main() -> None:
    if available():
        print(f"skipped: {available()}")
        return
    from bpfnb.dropwatch import watch_drops

    port = traffic.closed_port()
    sent = {"n": 0, "seconds": 0.0}

    attached = threading.Event()

    def sender() -> None:
        if not attached.wait(60):  # the tracer's signal, not a guess at its set-up time
            return
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            start = time.perf_counter()
            while time.perf_counter() - start < 2.0:
                for _ in range(200):
                    try:
                        s.sendto(b"x" * 32, ("127.0.0.1", port))
                    except ConnectionRefusedError:
                        pass
                sent["n"] += 200
            sent["seconds"] = time.perf_counter() - start

    thread = threading.Thread(target=sender)
    thread.start()
    try:
        frame = watch_drops(2.7, proto="udp", port=port, attached=attached)
    finally:
        attached.set()
        thread.join()
    rate_sent = sent["n"] / sent["seconds"]
    print(f"sent (reference) : {rate_sent:10,.0f} datagrams/s ({sent['n']:,})")
    print(f"traced           : {len(frame) / sent['seconds']:10,.0f} drops/s ({len(frame):,}), "
          f"lost {frame.attrs['lost']}")
    print(f"ratio            : {len(frame) / max(sent['n'], 1):.3f} of the datagrams sent were traced")


if __name__ == "__main__":
    main()
