"""The listener at shutdown: new handshakes dropped, queued connections still accepted."""

from __future__ import annotations

import socket

import pytest

from serving.listener import drop_new_connections, queued


def test_a_dropping_listener_completes_no_new_handshake_and_keeps_its_queue() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        address = listener.getsockname()
        early = socket.create_connection(address, timeout=5)  # queued by the kernel
        assert drop_new_connections(listener.fileno())
        late = socket.socket()
        late.settimeout(0.3)
        with pytest.raises(TimeoutError):  # its handshake is dropped: not connected
            late.connect(address)
        late.close()
        assert queued([listener.fileno()])
        accepted, _ = listener.accept()  # the queued one is still there to accept
        assert not queued([listener.fileno()])
        accepted.sendall(b"answer")
        assert early.recv(16) == b"answer"
        accepted.close()
        early.close()
    after = socket.socket()
    with pytest.raises(ConnectionRefusedError):  # the listener closed: a clean refusal
        after.connect(address)
    after.close()
