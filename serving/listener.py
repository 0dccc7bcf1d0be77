"""Closing the listener without resetting connections the kernel already accepted.

The kernel completes TCP handshakes on its own and queues the connections until the
process accepts them. Closing a listening socket resets every connection still in
that queue, and their clients may have sent a request already: during a drain under
load, clients that connected as the listener closed lost their request to a reset.

``stop_accepting`` runs just before uvicorn closes its listeners. It attaches a
socket filter that drops every new handshake's packets (Linux; classic BPF
``ret #0``), so no connection joins the queue; then it waits, at most
``BACKLOG_WAIT_S``, until the event loop has accepted every queued one. Those get
their answer (503 ``draining``, see ``GuardedHttpToolsProtocol.shutdown``). A client
whose handshake was dropped retries it and, the listener closed by then, is refused
(``ECONNREFUSED``) before it sent any byte of its request. Where the filter cannot
be attached, the listeners close as uvicorn closes them.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import select
import socket
import struct
from collections.abc import Iterable

log = logging.getLogger("serving")

#: Longest wait for the event loop to accept the connections already queued.
BACKLOG_WAIT_S = 1.0
_POLL_S = 0.01
#: Linux's SO_ATTACH_FILTER (Python's socket module does not name it).
SO_ATTACH_FILTER = 26
#: One classic BPF instruction: BPF_RET | BPF_K with k = 0, keep no byte of any packet.
_DROP_ALL = struct.pack("HBBI", 0x06, 0, 0, 0)


def drop_new_connections(fd: int) -> bool:
    """Make the listening socket ``fd`` drop new handshakes; False if that is not possible."""
    program = ctypes.create_string_buffer(_DROP_ALL, len(_DROP_ALL))
    fprog = struct.pack("HL", 1, ctypes.addressof(program))  # struct sock_fprog
    try:
        with socket.socket(fileno=os.dup(fd)) as sock:  # the same socket, another descriptor
            sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    except OSError as exc:
        log.info("listener closes without draining its queue", extra={"error": str(exc)})
        return False
    return True


def queued(fds: list[int]) -> bool:
    """True while a listening socket in ``fds`` has a connection waiting to be accepted."""
    readable, _, _ = select.select(fds, [], [], 0)
    return bool(readable)


async def stop_accepting(servers: Iterable[asyncio.AbstractServer]) -> None:
    """No new connection is queued; the queued ones are accepted (see the module doc)."""
    fds = [
        sock.fileno()
        for server in servers
        for sock in getattr(server, "sockets", ())
        if sock.fileno() >= 0
    ]
    fds = [fd for fd in fds if drop_new_connections(fd)]
    if not fds:
        return
    for _ in range(int(BACKLOG_WAIT_S / _POLL_S)):
        if not queued(fds):
            break
        await asyncio.sleep(_POLL_S)  # the loop accepts them meanwhile
    await asyncio.sleep(0)  # and runs the last ones' connection_made
