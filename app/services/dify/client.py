"""Dify Service API client: httpx requests over the pooled transport, Structs in and out, every failure a
GatewayError."""

import logging
import time
from typing import TypeVar

import httpx
import msgspec

from app.config import AppMode
from app.errors import GatewayError, UpstreamError, UpstreamTimeoutError
from app.schemas.dify import (
    AppInfo,
    AppParameters,
    BlockingMessage,
    ErrorBody,
    StopRequest,
    TextToAudioRequest,
    Transcript,
    UploadedFile,
)
from app.services import access, metrics
from app.services.dify.errors import error_from_dify, parse_error_body

logger = logging.getLogger("opendify.dify")

T = TypeVar("T")
USER_AGENT = b"opendify"
_encoder = msgspec.json.Encoder()
_info = msgspec.json.Decoder(AppInfo)
BLOCKING_ANSWER = msgspec.json.Decoder(BlockingMessage)  # /chat-messages and /completion-messages
_upload = msgspec.json.Decoder(UploadedFile)
_transcript = msgspec.json.Decoder(Transcript)
_parameters = msgspec.json.Decoder(AppParameters)

# Side-effect-free probes (shared/traces/README.md): Dify validates the app mode, then the body, before running.
_PROBE_CHAT = b'{"user":"opendify-probe","inputs":{},"query":"","response_mode":"blocking"}'
_PROBE_WORKFLOW = b'{"user":"opendify-probe","response_mode":"blocking"}'

# Dify's own errors are a few hundred bytes; a proxy's page or a runaway error is not read (or relayed) whole
ERROR_BODY_LIMIT = 64 * 1024
ANSWER_LIMIT = 32 * 1024 * 1024  # a whole (blocking) answer; more is not an answer this gateway can relay


class HttpAnswer:
    """A whole (non-streaming) answer from Dify: its status and body (an error body at most ERROR_BODY_LIMIT)."""

    __slots__ = ("content", "status_code")

    def __init__(self, status_code: int, content: bytes) -> None:
        self.status_code = status_code
        self.content = content

    def decode(self, decoder: msgspec.json.Decoder[T], what: str, *, ok: tuple[int, ...] = (200,)) -> T:
        """The answer as a Struct, or the gateway error Dify's error (or an unreadable answer) stands for."""
        if self.status_code not in ok:
            raise error_from_dify(self.status_code, parse_error_body(self.content))
        try:
            return decoder.decode(self.content)
        except msgspec.DecodeError as exc:
            raise UpstreamError(f"Dify sent an unreadable answer to {what}: {exc}") from exc


async def read_body(response: httpx.Response) -> bytes:
    """Read and close a response; an error answer is cut at ERROR_BODY_LIMIT bytes, a longer answer than
    ANSWER_LIMIT is an upstream error. The body is read off the response's stream as the transport delivers it
    (requests ask for identity encoding): httpx's decoding layers only for an answer that is encoded anyway."""
    error = response.status_code >= 400
    limit = ERROR_BODY_LIMIT if error else ANSWER_LIMIT
    chunks: list[bytes] = []
    size = 0
    stream = response.stream
    body = stream if isinstance(stream, httpx.AsyncByteStream) and "content-encoding" not in response.headers else None
    try:
        async for chunk in body or response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if error and size >= limit:
                break
            if size > limit:
                raise UpstreamError(f"Dify's answer is over {limit} bytes", code="upstream_too_large")
    finally:
        await response.aclose()
    content = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    return content[:limit] if size > limit else content


def transport_error(exc: httpx.TransportError, base_url: str) -> GatewayError:
    """What a failure to reach Dify, or to hear it out, is for the client."""
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeoutError(f"Dify did not answer in time ({type(exc).__name__})")
    return UpstreamError(f"Dify is unreachable at {base_url} ({type(exc).__name__})", code="upstream_unreachable")


def _request_id() -> list[tuple[bytes, bytes]]:
    """`X-Request-Id`, the id of the client request a Dify request serves: Dify's logs and the gateway's line up."""
    request_id = access.request_id()
    return [] if request_id is None else [(b"X-Request-Id", request_id.encode())]


class DifyClient:
    """Requests go straight to the pooled transport: the AsyncClient layer above it (redirects, cookies, auth
    flows, URL merging) does nothing this gateway needs, and costs a large share of a request's CPU."""

    __slots__ = (
        "_base",
        "_extensions",
        "_headers",
        "_host",
        "_root",
        "_transport",
        "_urls",
        "app_names",
        "files_origin",
        "version",
    )

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        base_url: str,
        timeout: httpx.Timeout,
        *,
        files_url: str | None = None,
    ) -> None:
        self._transport = transport
        self._base = base_url.rstrip("/")
        url = httpx.URL(self._base)
        # Dify's file URLs are relative (`/files/...`) unless its FILES_URL is set: served at its origin, or at the
        # public address the gateway is told (DIFY_FILES_URL) when clients cannot reach DIFY_API_BASE
        self._root = url.path.removesuffix("/")  # the API's own path: what a metric's endpoint label leaves out
        self.app_names: dict[str, str] = {}  # Dify key -> model id, for metrics' labels (the registry keeps it)
        root = url.path.removesuffix("/").removesuffix("/v1")  # a Dify behind a path prefix serves its files under it
        self.files_origin = files_url.rstrip("/") if files_url else f"{url.scheme}://{url.netloc.decode()}{root}"
        self._extensions = {"timeout": timeout.as_dict()}
        self._host = url.netloc
        self._headers: dict[tuple[str, bool], list[tuple[bytes, bytes]]] = {}
        self._urls: dict[str, httpx.URL] = {}
        self.version: str | None = None  # Dify's `X-Version`, logged once when first seen

    def _auth(self, key: str, *, json: bool = True) -> list[tuple[bytes, bytes]]:
        """A request's fixed headers for a key (built once per key), Host first."""
        headers = self._headers.get((key, json))
        if headers is None:
            headers = [(b"Host", self._host), (b"Authorization", f"Bearer {key}".encode()), (b"User-Agent", USER_AGENT)]
            if json:
                headers.append((b"Content-Type", b"application/json"))
                headers.append((b"Accept-Encoding", b"identity"))  # event streams are relayed as they come
            self._headers[key, json] = headers
        return headers

    def _url(self, path: str) -> httpx.URL:
        url = self._urls.get(path)
        if url is None:
            url = httpx.URL(self._base + path)
            if len(self._urls) < 64:  # fixed paths only; per-task paths are not worth keeping
                self._urls[path] = url
        return url

    def _request(self, method: str, key: str, path: str, content: bytes | None = None) -> httpx.Request:
        """An httpx request built the way a transport builds one (`stream=`): its headers given whole, so httpx
        neither normalises nor searches them (17 -> 5 µs a request)."""
        headers = [*self._auth(key, json=content is not None), *_request_id()]
        if content is not None:
            headers.append((b"Content-Length", str(len(content)).encode()))
        request = httpx.Request(
            method,
            self._url(path),
            headers=headers,
            stream=httpx.ByteStream(content or b""),
            extensions=self._extensions,
        )
        request.read()  # (`content` set, as transports read it)
        return request

    async def _open(self, request: httpx.Request) -> httpx.Response:
        """Send a request; the caller owns the response (its body unread) and must close it."""
        if not metrics.state.enabled:
            return await self._send_once(request)
        started = time.perf_counter()
        app = self.app_names.get(request.headers.get("authorization", "")[7:], "unknown")
        try:
            response = await self._send_once(request)
        except GatewayError:
            metrics.dify_request(app, request.url.path.removeprefix(self._root), "error", time.perf_counter() - started)
            raise
        metrics.dify_request(
            app, request.url.path.removeprefix(self._root), response.status_code, time.perf_counter() - started
        )
        return response

    async def _send_once(self, request: httpx.Request) -> httpx.Response:
        transport = self._transport
        try:
            try:
                return await transport.handle_async_request(request)
            except httpx.ConnectError:
                # no connection, so nothing was sent: once more (a fresh connection, or Dify back after a blip)
                return await transport.handle_async_request(request)
            except (httpx.RemoteProtocolError, httpx.ReadError):
                # the connection died under the request: a GET is asked again; a POST may already have started a
                # run (Dify read it, then the connection dropped), so it is not sent twice
                if request.method != "GET":
                    raise
                return await transport.handle_async_request(request)
        except httpx.TransportError as exc:
            raise transport_error(exc, self._base) from exc

    async def _read(self, response: httpx.Response) -> bytes:
        try:
            return await read_body(response)
        except httpx.TransportError as exc:
            raise transport_error(exc, self._base) from exc

    async def _send(self, request: httpx.Request) -> HttpAnswer:
        response = await self._open(request)
        if self.version is None:  # (asked once: "" when Dify sends no version)
            self.version = response.headers.get("x-version", "")
            if self.version:
                logger.info("Dify answers", extra={"dify_version": self.version, "dify_api_base": self._base})
        return HttpAnswer(response.status_code, await self._read(response))

    async def _post(self, key: str, path: str, content: bytes) -> HttpAnswer:
        return await self._send(self._request("POST", key, path, content))

    async def _get(self, key: str, path: str, decoder: msgspec.json.Decoder[T]) -> T:
        answer = await self._send(self._request("GET", key, path))
        return answer.decode(decoder, f"GET {path}")

    async def info(self, key: str) -> AppInfo:
        return await self._get(key, "/info", _info)

    async def parameters(self, key: str) -> AppParameters:
        return await self._get(key, "/parameters", _parameters)

    async def probe_mode(self, key: str) -> AppMode | None:
        """Tell the app type apart on a Dify whose /info has no `mode`. Runs nothing on the Dify side."""
        chat = await self._post(key, "/chat-messages", _PROBE_CHAT)
        body = parse_error_body(chat.content)
        if chat.status_code == 401:
            raise error_from_dify(401, body)
        if body.code == "not_chat_app":
            flow = await self._post(key, "/workflows/run", _PROBE_WORKFLOW)
            code = parse_error_body(flow.content).code
            if code == "not_workflow_app":
                return "completion"
            return "workflow" if code == "invalid_param" else None
        if "blocking" in body.message.lower():
            return "agent-chat"
        if chat.status_code == 400 and body.code == "invalid_param":
            return "chat"  # chat and chatflow answer alike here; both are served the same way
        return None

    async def run_blocking(self, key: str, path: str, request: msgspec.Struct, decoder: msgspec.json.Decoder[T]) -> T:
        """A blocking run (`/chat-messages`, `/completion-messages`, `/workflows/run`): its answer, or Dify's error."""
        answer = await self._post(key, path, _encoder.encode(request))
        return answer.decode(decoder, f"POST {path}")

    async def run_stream(self, key: str, path: str, request: msgspec.Struct) -> httpx.Response:
        """Open a streaming run; the caller owns the returned response and must close it."""
        response = await self._open(self._request("POST", key, path, _encoder.encode(request)))
        if response.status_code == 200 and response.headers.get("content-type", "").startswith("text/event-stream"):
            return response
        content = await self._read(response)
        if response.status_code == 200:
            raise UpstreamError("Dify answered a streaming request without an event stream")
        raise error_from_dify(response.status_code, parse_error_body(content))

    async def _send_file(self, key: str, path: str, user: str, file: tuple[str, bytes, str]) -> HttpAnswer:
        """A multipart POST of one `file` (name, bytes, type) and the `user` field."""
        request = httpx.Request(
            "POST",
            self._url(path),
            files={"file": file},
            data={"user": user},
            headers=[*self._auth(key, json=False), *_request_id()],
            extensions=self._extensions,
        )
        await request.aread()  # multipart is built lazily; transports get it whole
        return await self._send(request)

    async def upload_file(self, key: str, user: str, filename: str, mime_type: str, data: bytes) -> str:
        """`POST /files/upload` (multipart); returns the id to reference as a `local_file`."""
        answer = await self._send_file(key, "/files/upload", user, (filename, data, mime_type))
        return answer.decode(_upload, "the upload", ok=(200, 201)).id

    async def audio_to_text(self, key: str, user: str, filename: str, mime_type: str, data: bytes) -> str:
        """`POST /audio-to-text` (multipart): the transcript."""
        answer = await self._send_file(key, "/audio-to-text", user, (filename, data, mime_type))
        return answer.decode(_transcript, "the transcription").text

    async def text_to_audio(self, key: str, user: str, text: str, voice: str | None) -> httpx.Response:
        """`POST /text-to-audio`: the caller owns the returned audio response (read it as it comes) and closes it."""
        body = TextToAudioRequest(text=text, user=user, voice=voice)
        response = await self._open(self._request("POST", key, "/text-to-audio", _encoder.encode(body)))
        if response.status_code == 200 and response.headers.get("content-type", "").startswith("audio/"):
            return response
        content = await self._read(response)
        if response.status_code == 200:
            raise UpstreamError("Dify answered a speech request without audio", code="upstream_malformed")
        raise error_from_dify(response.status_code, parse_error_body(content))

    async def stop(self, key: str, path: str, task_id: str, user: str) -> None:
        """Stop a run (`/chat-messages/{id}/stop`, `/completion-messages/{id}/stop`, `/workflows/tasks/{id}/stop`);
        a failure is logged, never raised: the client's answer does not depend on it."""
        try:
            response = await self._post(key, path, _encoder.encode(StopRequest(user=user)))
        except GatewayError as exc:
            logger.warning("could not stop Dify task", extra={"task_id": task_id, "error": exc.message})
            return
        if response.status_code != 200:
            body: ErrorBody = parse_error_body(response.content)
            logger.warning("Dify refused to stop a task", extra={"task_id": task_id, "code": body.code})
