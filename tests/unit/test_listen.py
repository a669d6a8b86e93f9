"""The server's listening socket."""

from __future__ import annotations

import socket

from launchbay.server import listen


def test_accepted_connections_send_small_writes_at_once():
    # Without TCP_NODELAY a response written as headers then body waited for the client's
    # delayed ACK: 40 ms on every request of a kept-alive connection (bay's wait loops,
    # the portal's live fragments, webhooks).
    with listen("127.0.0.1", 0) as server, socket.create_connection(server.getsockname()):
        accepted, _ = server.accept()
        with accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
