"""The request's files, as Dify references them: remote URLs passed on, bytes uploaded (`POST /files/upload`) once.

The same bytes for the same app and user are one upload for `ttl` seconds (kept below Dify's own retention of
uploads): the content hash maps to the upload id in a store of the conversation store's kind, in memory or in Redis
shared by every process and instance. A store that is down only means uploading again."""

import hashlib
import logging

from app.errors import InvalidRequestError, PayloadTooLargeError
from app.schemas.dify import DifyFile
from app.services.conversations.stores import ConversationStore, StoreUnavailableError
from app.services.dify import DifyClient
from app.services.inputs.files import SentFile
from app.services.registry import DifyApp

logger = logging.getLogger("opendify.uploads")


def _upload_key(app: DifyApp, user: str, sent: SentFile) -> str:
    # the app by a digest of its key (never the key), the user, the bytes: an upload is only valid for its user
    app_id = hashlib.sha256(app.key.encode()).hexdigest()[:16]
    # (and the name: Dify types an upload by its extension)
    return "u:" + hashlib.sha256(f"{app_id}\x00{user}\x00{sent.filename}\x00{sent.digest}".encode()).hexdigest()


def stale_upload(error: InvalidRequestError) -> bool:
    """Dify's answer to a run that references an upload it does not (or no longer) know."""
    return "invalid upload file" in error.message.lower()


class Uploads:
    def __init__(self, dify: DifyClient, store: ConversationStore) -> None:
        self._dify = dify
        self._store = store
        self._reused: set[str] = set()  # upload ids taken from the cache (at most the cache's size, bounded below)

    def reused(self, files: list[DifyFile]) -> bool:
        """Whether any of these files is an upload taken from the cache (which Dify may have forgotten)."""
        return any(file.upload_file_id in self._reused for file in files)

    async def _cached(self, key: str) -> str | None:
        try:
            [upload_id] = await self._store.get_many([key])
        except StoreUnavailableError:
            return None
        return upload_id

    async def _remember(self, key: str, upload_id: str) -> None:
        try:
            await self._store.set_many({key: upload_id})
        except StoreUnavailableError as exc:
            logger.warning("upload cache unavailable", extra={"error": str(exc)})

    async def _upload(self, app: DifyApp, user: str, sent: SentFile, *, fresh: bool) -> str:
        key = _upload_key(app, user, sent)
        cached = None if fresh else await self._cached(key)
        if cached is not None:
            if len(self._reused) > 10_000:
                self._reused.clear()
            self._reused.add(cached)
            return cached
        try:
            upload_id = await self._dify.upload_file(app.key, user, sent.filename, sent.mime_type, sent.data)
        except InvalidRequestError as exc:  # Dify's refusal of this file, named by its part
            message = f"{sent.where}: Dify refused the file `{sent.filename}`: {exc.message}"
            if exc.code == "file_too_large":
                raise PayloadTooLargeError(message, param=sent.where, code="file_too_large") from exc
            code = exc.code if exc.code == "unsupported_file_type" else "invalid_file"
            raise InvalidRequestError(message, param=sent.where, code=code) from exc
        await self._remember(key, upload_id)
        return upload_id

    async def dify_files(
        self, app: DifyApp, user: str, files: list[SentFile], types: list[str], *, fresh: bool = False
    ) -> list[DifyFile]:
        """Each file as Dify references it, under the type it goes as (`inputs.files.check`); `fresh`: uploaded
        again even if the cache has it."""
        out: list[DifyFile] = []
        for sent, kind in zip(files, types, strict=True):
            if sent.url is not None:
                out.append(DifyFile(type=kind, transfer_method="remote_url", url=sent.url))
            else:
                upload_id = await self._upload(app, user, sent, fresh=fresh)
                out.append(DifyFile(type=kind, transfer_method="local_file", upload_file_id=upload_id))
        return out

    async def close(self) -> None:
        await self._store.close()
