"""A Jupyter server setting for widgets that answer clicks: Nagle's algorithm off on
the kernel's websocket.

jupyter_server leaves Nagle's algorithm on for the kernel websocket (tornado turns it
back on after the upgrade's response). A kernel answers a comm message with several
frames — the ``busy`` status, the widgets' updates, ``idle`` — and the second waits
for the browser to acknowledge the first, which Linux delays up to 40 ms: measured
here, a comm message echoed by the kernel took 60 ms median in JupyterLab, 19 ms with
this class (``VerifierStepper``'s jumps through the kernel likewise).

Use it when starting the server::

    jupyter lab --ServerApp.kernel_websocket_connection_class=bpfnb.widgets.server.NoDelayKernelConnection

or put ``c.ServerApp.kernel_websocket_connection_class = "bpfnb.widgets.server.NoDelayKernelConnection"``
in ``jupyter_server_config.py``. Nothing else changes: it is jupyter_server's own
connection, each frame sent when written.
"""

from __future__ import annotations

from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection

# the class's dotted name, as given to --ServerApp.kernel_websocket_connection_class
CONNECTION_CLASS = "bpfnb.widgets.server.NoDelayKernelConnection"


class NoDelayKernelConnection(ZMQChannelsWebsocketConnection):
    """jupyter_server's kernel websocket connection, each frame sent as soon as written."""

    def connect(self):
        self.websocket_handler.set_nodelay(True)
        return super().connect()
