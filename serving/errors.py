"""Error answers of the HTTP layer: ``HttpError`` and the JSON response helpers."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


class HttpError(Exception):
    """An error answer: status, client-safe message and extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Serialise ``body`` with orjson (numpy arrays included) into a JSON response."""
    content = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(content, status_code=status, headers=headers, media_type="application/json")


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """Return ``{"error": message}`` with ``status``."""
    return json_response({"error": message}, status, headers)
