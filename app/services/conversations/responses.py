"""Responses kept for `previous_response_id` and `GET`/`DELETE /v1/responses/{id}`: the response object, the Dify
conversation it belongs to, and its owner, in the conversation store (memory, or Redis shared by every instance),
for CONVERSATION_TTL. A response is found only by the client key (and `user`) that created it: any other gets the
same 404 as for an id never seen."""

import hashlib
import logging
from typing import Final

import msgspec

from app.errors import NotFoundError, ServiceUnavailableError
from app.services.conversations.stores import ConversationStore, StoreUnavailableError

logger = logging.getLogger("opendify.responses")

MAX_KEPT: Final = 1024 * 1024  # bytes of a response object kept for GET; a larger one only continues


class Kept(msgspec.Struct, kw_only=True):
    owner: str  # a digest of the client key's id (GET and DELETE check it)
    user: str  # a digest of the owner and the request's `user` (previous_response_id checks it too)
    model: str
    conversation_id: str | None
    response: msgspec.Raw = msgspec.Raw(b"null")  # the response object's JSON (null: too large to keep)


_decoder = msgspec.json.Decoder(Kept)
_encode = msgspec.json.Encoder().encode


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


def not_found(response_id: str, param: str | None = None) -> NotFoundError:
    return NotFoundError(
        f"No response `{response_id[:100]}` is kept for this client (unknown, expired, deleted or not stored).",
        code="previous_response_not_found" if param else "not_found",
        param=param,
    )


class ResponseLog:
    def __init__(self, store: ConversationStore) -> None:
        self._store = store

    async def _get(self, response_id: str) -> Kept | None:
        try:
            [raw] = await self._store.get_many(["r:" + response_id])
        except StoreUnavailableError as exc:
            raise ServiceUnavailableError("The response store is unavailable; retry shortly.") from exc
        return None if raw is None else _decoder.decode(raw)

    async def continued(self, response_id: str, client_id: str, user: str | None, model: str) -> str | None:
        """The Dify conversation `previous_response_id` continues; a 404 unless it is this client's (and user's),
        for this model."""
        kept = await self._get(response_id)
        if kept is None or kept.user != _digest(client_id, user or "") or kept.model != model:
            raise not_found(response_id, "previous_response_id")
        return kept.conversation_id

    async def get(self, response_id: str, client_id: str) -> bytes:
        kept = await self._get(response_id)
        if kept is None or kept.owner != _digest(client_id) or bytes(kept.response) == b"null":
            raise not_found(response_id)
        return bytes(kept.response)

    async def delete(self, response_id: str, client_id: str) -> None:
        kept = await self._get(response_id)
        if kept is None or kept.owner != _digest(client_id):
            raise not_found(response_id)
        try:
            await self._store.delete_many(["r:" + response_id])
        except StoreUnavailableError as exc:
            raise ServiceUnavailableError("The response store is unavailable; retry shortly.") from exc

    async def keep(
        self,
        response_id: str,
        response: bytes,
        *,
        client_id: str,
        user: str | None,
        model: str,
        conversation_id: str | None,
    ) -> None:
        """Never fails the answer: a store that is down only means the response cannot be continued."""
        kept = Kept(
            owner=_digest(client_id),
            user=_digest(client_id, user or ""),
            model=model,
            conversation_id=conversation_id,
            response=msgspec.Raw(response if len(response) <= MAX_KEPT else b"null"),
        )
        try:
            await self._store.set_many({"r:" + response_id: _encode(kept).decode()})
        except StoreUnavailableError as exc:
            logger.warning("response store unavailable; the response cannot be continued", extra={"error": str(exc)})
