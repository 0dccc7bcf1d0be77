"""The fast path: infer POSTs go straight to the predict path, everything else to Starlette.

Profiling under load showed Starlette's middleware, routing and request objects
costing about a third of the event loop's time per request, and the loop shares the
GIL with predict. The infer routes (the hot path) therefore skip them; their answers
are the same ``Response`` objects (``serving.written.Recorded``, which write
themselves and record their request once written). Every other request, a
mounted ``root_path`` and the lifespan go to Starlette unchanged, so ``state`` is
Starlette's. ``tests/serving/test_serving_frontdoor.py`` holds the two paths' answers
to be the same, status, headers and body.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.predict import INVOCATIONS, NO_ANSWER, V2_INFER, predict
from serving.service import ServiceState
from serving.written import Recorded

#: Added to every answer during a drain, so that no client reuses the connection.
CLOSE = (b"connection", b"close")


class RawRequest:
    """A request of the infer routes read straight from the ASGI scope."""

    __slots__ = ("_receive", "headers")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            # The first of repeated headers wins, as with Starlette's Headers.get.
            headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
        self.headers: Mapping[str, str] = headers
        self._receive = receive

    @property
    def receive(self) -> Receive:
        """The ASGI ``receive`` callable (watched for a disconnect once the body is read)."""
        return self._receive

    async def stream(self) -> AsyncIterator[bytes]:
        """Yield the body chunks; raise ``ClientDisconnect`` if the client goes away."""
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            body = message.get("body", b"")
            if body:
                yield body
            if not message.get("more_body", False):
                return


def infer_route(path: str) -> tuple[str, str | None] | None:
    """Return (model, version) if ``path`` is a V2 infer route, else None."""
    parts = path.split("/")
    # /v2/models/{name}/infer or /v2/models/{name}/versions/{version}/infer
    if len(parts) == 5 and parts[4] == "infer":
        version = None
    elif len(parts) == 7 and parts[6] == "infer" and parts[4] == "versions" and parts[5]:
        version = parts[5]
    else:
        return None
    if parts[0] or parts[1] != "v2" or parts[2] != "models" or not parts[3]:
        return None
    return parts[3], version


class InferFrontDoor:
    """The service's ASGI app: the fast path for infer POSTs in front of Starlette."""

    def __init__(self, app: Starlette, service: ServiceState) -> None:
        self.app: ASGIApp = app
        self.state = app.state
        self._service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            path: str = scope["path"]
            service = self._service
            if path == "/invocations":
                request = RawRequest(scope, receive)
                response = await predict(service, request, INVOCATIONS, model=service.default)
            elif (route := infer_route(path)) is not None:
                request = RawRequest(scope, receive)
                name, version = route
                response = await predict(service, request, V2_INFER, model=name, version=version)
            else:
                response = None
            if response is NO_ANSWER:
                return
            if isinstance(response, Recorded):
                response.closing = service.draining
                await response(scope, receive, send)
                return
        await self.app(scope, receive, self._closing_when_draining(send))

    def _closing_when_draining(self, send: Send) -> Send:
        """Wrap ``send`` so that an answer started during a drain closes its connection.

        Without it, keep-alive clients sent one more request on a connection that the
        shutdown then closed, and got a reset instead of an answer.
        """
        service = self._service

        async def closing(message: Message) -> None:
            if message["type"] == "http.response.start" and service.draining:
                message = {**message, "headers": [*message.get("headers", ()), CLOSE]}
            await send(message)

        return closing
