"""GraphQL over HTTP: the aiohttp view that serves /graphql (queries, mutations, GraphiQL, websockets)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import ClientConnectionResetError, web
from strawberry.aiohttp.views import AiohttpWebSocketAdapter, GraphQLView
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.types.unset import UnsetType

from gateway.auth import API_KEY_HEADER
from gateway.context import Context
from gateway.errors import Unauthenticated
from gateway.keys import AUTHENTICATOR, PRINCIPAL, REQUEST_ID, SERVICES


class TextWebSocketAdapter(AiohttpWebSocketAdapter):
    """graphql-transport-ws speaks in text frames; the view's JSON is bytes (orjson), so decode it here."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        try:
            await self.ws.send_str(orjson.dumps(message).decode())
        except (RuntimeError, ClientConnectionResetError) as exc:
            raise WebSocketDisconnected from exc


class GatewayView(GraphQLView[Context, None]):
    websocket_adapter_class = TextWebSocketAdapter  # type: ignore[assignment]

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    async def get_context(self, request: web.Request, response: Any) -> Context:
        return Context.build(request, response, request.app[SERVICES], request[REQUEST_ID], request.get(PRINCIPAL))

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        if context.principal is not None:
            return None
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        lowered = {str(key).lower(): value for key, value in params.items()}
        authorization, api_key = lowered.get("authorization"), lowered.get(API_KEY_HEADER.lower())
        try:
            context.principal = context.request.app[AUTHENTICATOR].authenticate(
                authorization if isinstance(authorization, str) else None,
                api_key if isinstance(api_key, str) else None,
            )
        except Unauthenticated as exc:
            raise ConnectionRejectionError({"message": exc.message, "code": exc.code}) from exc
        return None
