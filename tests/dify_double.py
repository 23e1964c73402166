"""A Dify double that speaks the recorded 0.15.3 wire format, on a real port.

Events are the recorded ones (tests/fixtures/traces) with fresh ids and the stand-in model's answer: the recorded
model answered `Echo: <query>` in chunks of about three words, and so does this one. Triggers in the query, as
with the recorded model: `[fail]` (model failure, as recorded), `[slow]` (0.5 s a chunk, pings). Triggers only
this double knows: `[http500]`, `[http429]`, `[truncate]` (stream ends without its terminal event),
`[drop]` (connection dropped mid-stream), `[chunks=N]` (N content chunks; for the benchmark), `[think]` (a
`<think>` block first, split mid-tag), `[pause]` (a chatflow waiting for human input), `[busy]` (the concurrency limit),
`[object]` (an answer that holds a JSON object in a fenced block, as models write them), `[image]` (the app sends an
image, `message_file`, with a URL relative to Dify as self-hosted Dify signs them; current Dify's chat and agent apps
then send their text chunks as `message_file` events too).
"""

import asyncio
import json
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from tests.traces import load

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def dumps(payload: Any) -> bytes:
    return json.dumps(payload).encode()  # Dify 0.15.3: ", " separators and \\uXXXX escapes, as recorded


def _recorded_error(name: str) -> tuple[int, bytes]:
    trace = load(name)
    return trace.status, trace.body


@dataclass
class DifyAppDouble:
    key: str
    name: str
    mode: str  # chat | agent-chat | advanced-chat | workflow | completion
    description: str = ""
    report_mode: bool = False  # newer Dify reports `mode` in /info; 0.15.3 does not
    input_variables: tuple[str, ...] = ()  # paragraph inputs declared in the app's form (GET /parameters)
    required_inputs: tuple[str, ...] = ()  # required text inputs declared in the form, beside the mode's own
    agent_1_16: bool = False  # a New Agent as Dify 1.16 streams it: agent_message deltas, then the whole answer
    file_upload: dict[str, Any] | None = None  # the app's `file_upload` (GET /parameters); None: the recorded one
    file_inputs: tuple[dict[str, Any], ...] = ()  # workflow file inputs: {"file" | "file-list": {variable, ...}}
    speech_to_text: bool = False  # the app's speech to text (POST /audio-to-text) is on
    text_to_speech: bool = False  # the app's text to speech (POST /text-to-audio) is on


@dataclass
class Upload:
    user: str
    filename: str
    mime_type: str
    data: bytes


@dataclass
class RecordedRequest:
    method: str
    path: str
    key: str
    body: Any
    request_id: str | None = None  # the X-Request-Id the gateway sent


@dataclass
class DifyDouble:
    apps: list[DifyAppDouble]
    chunk_delay: float = 0.0
    slow_delay: float = 0.5
    ping_interval: float = 10.0
    requests: list[RecordedRequest] = field(default_factory=list)
    stopped: set[str] = field(default_factory=set)
    conversations: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (key, user)
    fail_info: set[str] = field(default_factory=set)  # keys whose /info answers 500
    uploads: dict[str, Upload] = field(default_factory=dict)  # upload id -> what was uploaded, by whom
    url: str = ""  # set by whoever serves it
    generation: str = "0.15.3"  # or "1.15": current Dify's behaviour where it differs (see dify-current.md)

    @property
    def current(self) -> bool:
        return self.generation != "0.15.3"

    def __post_init__(self) -> None:
        self._by_key = {app.key: app for app in self.apps}
        self._templates = {
            "chat": load("chat-streaming").events(),
            "agent-chat": load("agent-chat-streaming").events(),
            "agent-tool": load("agent-chat-streaming-toolcall").events(),
            "advanced-chat": load("advanced-chat-streaming").events(),
            "agent": load("dify-1.15/agent-streaming").events(),
            "completion": load("completion-streaming").events(),
            "workflow": load("workflow-streaming").events(),
        }

    # --- ASGI --------------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                kind = (await receive())["type"]
                await send({"type": f"{kind}.complete"})
                if kind == "lifespan.shutdown":
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        await self._route(scope["method"], scope["path"], headers, body, send)

    async def _json(self, send: Send, status: int, payload: bytes | Any) -> None:
        content = payload if isinstance(payload, bytes) else dumps(payload)
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
        )
        await send({"type": "http.response.body", "body": content})

    async def _route(self, method: str, path: str, headers: dict[str, str], raw: bytes, send: Send) -> None:
        authorization = headers.get("authorization", "")
        if not authorization.lower().startswith("bearer "):
            await self._json(send, *_recorded_error("chat-err-no-auth"))
            return
        key = authorization[7:]
        app = self._by_key.get(key)
        if app is None:
            await self._json(send, *_recorded_error("chat-err-bad-key"))
            return
        body: Any = None
        if raw and headers.get("content-type", "").startswith("application/json"):
            try:
                body = json.loads(raw)
            except ValueError:
                await self._json(send, *_recorded_error("chat-err-invalid-json"))
                return
        self.requests.append(RecordedRequest(method, path, key, body, headers.get("x-request-id")))
        if method == "GET" and path == "/v1/info":
            if key in self.fail_info:
                await self._json(send, 500, {"code": "internal_server_error", "message": "boom", "status": 500})
                return
            info: dict[str, Any] = {"name": app.name, "description": app.description, "tags": []}
            if app.report_mode or self.current:  # current Dify reports every app's mode
                info["mode"] = app.mode
            await self._json(send, 200, info)
        elif method == "GET" and path == "/v1/parameters":
            parameters = load(f"{app.mode}-parameters" if app.mode in ("workflow", "completion") else "chat-parameters")
            form: list[Any] = parameters.json()["user_input_form"] if app.mode in ("workflow", "completion") else []
            form += [
                {"paragraph": {"label": name, "variable": name, "required": False, "default": ""}}
                for name in app.input_variables
            ]
            form += [
                {"text-input": {"label": name, "variable": name, "required": True, "max_length": 48}}
                for name in app.required_inputs
            ]
            form += list(app.file_inputs)
            answer = {**parameters.json(), "user_input_form": form}
            if app.file_upload is not None:
                answer["file_upload"] = app.file_upload
            await self._json(send, 200, answer)
        elif method == "POST" and path == "/v1/chat-messages":
            await self._chat(app, body or {}, send)
        elif method == "POST" and path.startswith("/v1/chat-messages/") and path.endswith("/stop"):
            self.stopped.add(path.split("/")[3])
            await self._json(send, 200, {"result": "success"})
        elif method == "POST" and path == "/v1/workflows/run":
            if app.mode == "workflow" and (body or {}).get("user") != "opendify-probe":
                await self._run(app, body or {}, send)
            else:
                await self._workflow_probe(app, body or {}, send)
        elif method == "POST" and path == "/v1/completion-messages":
            if app.mode != "completion":
                await self._json(send, *_recorded_error("chat-err-completion-endpoint"))
            else:
                await self._run(app, body or {}, send)
        elif (
            method == "POST"
            and path.endswith("/stop")
            and path.startswith(("/v1/completion-messages/", "/v1/workflows/tasks/"))
        ):
            self.stopped.add(path.split("/")[-2])
            await self._json(send, 200, {"result": "success"})
        elif method == "POST" and path == "/v1/files/upload":
            await self._upload(headers, raw, send)
        elif method == "POST" and path == "/v1/audio-to-text":
            await self._audio_to_text(app, headers, raw, send)
        elif method == "POST" and path == "/v1/text-to-audio":
            await self._text_to_audio(app, body or {}, send)
        else:
            await self._json(
                send,
                404,
                {"code": "not_found", "message": "The requested URL was not found on the server.", "status": 404},
            )

    async def _upload(self, headers: dict[str, str], raw: bytes, send: Send) -> None:
        """`POST /files/upload` as Dify checks it (dify-service-api.md §6.1): one file part, a name, the blocked
        extensions, the size limits; 201 with the recorded body's fields."""
        fields = _form(headers, raw)
        if "file" not in fields:
            await self._json(
                send, 400, {"code": "no_file_uploaded", "message": "Please upload your file.", "status": 400}
            )
            return
        meta, data = fields["file"]
        filename, extension = meta.get("filename", ""), meta.get("filename", "").rpartition(".")[2].lower()
        if extension == "exe":
            message = f"File extension '.{extension}' is not allowed for security reasons"
            await self._json(send, 400, {"code": "invalid_param", "message": message, "status": 400})
            return
        limit = 10 if extension in ("png", "jpg", "jpeg", "gif", "webp", "svg") else 15
        if len(data) > limit * 1024 * 1024:
            await self._json(send, 413, {"code": "file_too_large", "message": "", "status": 413})
            return
        upload_id = str(uuid.uuid4())
        user = fields["user"][1].decode() if "user" in fields else "DEFAULT-USER"
        self.uploads[upload_id] = Upload(user=user, filename=filename, mime_type=meta["content_type"], data=data)
        answer = {"id": upload_id, "name": filename, "size": len(data), "extension": extension}
        answer |= {"mime_type": meta["content_type"], "created_by": str(uuid.uuid4()), "created_at": int(time.time())}
        await self._json(send, 201, answer)

    async def _audio_to_text(self, app: DifyAppDouble, headers: dict[str, str], raw: bytes, send: Send) -> None:
        """`POST /audio-to-text` (dify-current.md §2.10): the transcript of what was sent, as a stand-in model would."""
        if not app.speech_to_text:
            await self._json(
                send, 400, {"code": "invalid_param", "message": "Speech to text is not enabled", "status": 400}
            )
            return
        fields = _form(headers, raw)
        if "file" not in fields:
            await self._json(
                send, 400, {"code": "no_audio_uploaded", "message": "Please upload your audio.", "status": 400}
            )
            return
        meta, data = fields["file"]
        if meta["filename"].rpartition(".")[2].lower() not in ("mp3", "m4a", "wav", "amr", "mpga", "webm"):
            await self._json(
                send, 415, {"code": "unsupported_audio_type", "message": "Audio type not allowed.", "status": 415}
            )
            return
        if len(data) > 30 * 1024 * 1024:
            message = "Audio size exceeded. Audio size larger than 30 mb"
            await self._json(send, 413, {"code": "audio_too_large", "message": message, "status": 413})
            return
        await self._json(send, 200, {"text": f"Heard {len(data)} bytes of {meta['filename']}"})

    async def _text_to_audio(self, app: DifyAppDouble, body: dict[str, Any], send: Send) -> None:
        """`POST /text-to-audio`: audio bytes in several pieces (`ID3`, then the text, as a stand-in voice)."""
        if not app.text_to_speech:
            await self._json(send, 400, {"code": "invalid_param", "message": "TTS is not enabled", "status": 400})
            return
        voice = str(body.get("voice") or "app-voice").encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"audio/mpeg")]})
        for piece in (b"ID3\x04\x00", voice + b":", str(body.get("text", "")).encode()):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _files_seen(self, body: dict[str, Any]) -> str | None:
        """The files a run references, as the recorded model echoed them (`type:method:name`); None if an upload id
        is unknown or another user's (Dify: 400 "Invalid upload file")."""
        mappings = list(body.get("files") or [])
        for value in (body.get("inputs") or {}).values():
            mappings += [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, dict)]
        seen = []
        for mapping in mappings:
            if mapping.get("transfer_method") == "local_file":
                upload = self.uploads.get(mapping.get("upload_file_id", ""))
                if upload is None or upload.user != body.get("user"):
                    return None
                seen.append(f"{mapping['type']}:local_file:{upload.filename}")
            else:
                seen.append(f"{mapping.get('type')}:remote_url:{mapping.get('url')}")
        return " ".join(seen)

    async def _workflow_probe(self, app: DifyAppDouble, body: dict[str, Any], send: Send) -> None:
        if app.mode != "workflow":
            await self._json(send, *_recorded_error("chat-err-workflow-endpoint"))
        elif "inputs" not in body:
            await self._json(send, *_recorded_error("workflow-err-missing-inputs-field"))
        else:
            await self._json(send, *_recorded_error("workflow-err-missing-input"))

    # --- /chat-messages, in Dify's validation order ------------------------------------------------------

    async def _chat(self, app: DifyAppDouble, body: dict[str, Any], send: Send) -> None:
        if not body.get("user"):
            await self._json(send, *_recorded_error("chat-err-missing-user"))
            return
        if app.mode not in ("chat", "agent-chat", "advanced-chat", "agent"):
            await self._json(send, *_recorded_error("completion-err-chat-endpoint"))
            return
        if "query" not in body:
            await self._json(send, *_recorded_error("chat-err-missing-query"))
            return
        streaming = body.get("response_mode") == "streaming"
        if app.mode == "agent-chat" and not streaming:
            await self._json(send, *_recorded_error("agent-chat-err-blocking"))
            return
        if app.mode == "agent" and body.get("response_mode") == "blocking":
            await self._json(send, *_recorded_error("dify-1.15/agent-err-blocking"))
            return
        missing = [n for n in app.required_inputs if not str((body.get("inputs") or {}).get(n) or "").strip()]
        if missing and not body.get("conversation_id"):
            message = f"{missing[0]} is required in input form"
            if self.current and app.mode == "advanced-chat" and streaming:  # validated in the worker: HTTP 200
                await self._events_only(send, [_never_ran(message)])
            else:
                await self._json(send, 400, {"code": "invalid_param", "message": message, "status": 400})
            return
        if "[busy]" in body["query"]:  # the per-app concurrency limit, a ValueError in Dify: 400 invalid_param
            message = "Too many requests. Please try again later. The current maximum concurrent requests allowed for app is 1."
            await self._json(send, 400, {"code": "invalid_param", "message": message, "status": 400})
            return
        query: str = body["query"]
        if not query:
            await self._json(send, 400, {"code": "invalid_param", "message": "query is required", "status": 400})
            return
        seen = self._files_seen(body)
        if seen is None:
            await self._json(send, *_recorded_error("chat-err-bad-upload-file-id"))
            return
        conversation_id = body.get("conversation_id") or ""
        if conversation_id:
            owner = self.conversations.get(conversation_id)
            if owner != (app.key, body["user"]) and self.current and app.mode == "advanced-chat":
                # current Dify: an unknown chatflow conversation silently becomes a new one (no error)
                conversation_id = str(uuid.uuid4())
                self.conversations[conversation_id] = (app.key, body["user"])
            elif owner != (app.key, body["user"]):
                await self._json(send, *_recorded_error("chat-err-unknown-conversation"))
                return
        else:
            conversation_id = str(uuid.uuid4())
            self.conversations[conversation_id] = (app.key, body["user"])
        if "[http500]" in query:
            await self._json(
                send,
                500,
                {
                    "code": "internal_server_error",
                    "message": "The server encountered an internal error.",
                    "status": 500,
                },
            )
            return
        if "[http429]" in query:
            await self._json(
                send,
                429,
                {"code": "too_many_requests", "message": "Too many requests. Please try again later.", "status": 429},
            )
            return
        if "[fail]" in query and not streaming:
            name = (
                "advanced-chat-err-upstream-blocking" if app.mode == "advanced-chat" else "chat-err-upstream-blocking"
            )
            await self._json(send, *_recorded_error(name))
            return
        ids = {
            "conversation_id": conversation_id,
            "message_id": str(uuid.uuid4()),
            "task_id": str(uuid.uuid4()),
            "created_at": int(time.time()),
        }
        chunks = _answer_chunks(query, seen)
        if "[pause]" in query and app.mode == "advanced-chat":  # waits for a human (Dify 1.12+)
            trace = load(f"dify-1.15/advanced-chat-hitl-{'streaming' if streaming else 'blocking'}")
            if streaming:
                await self._events_only(send, [_with_ids(e, ids) for e in trace.events()])
            else:
                await self._json(send, 200, {**trace.json(), "conversation_id": ids["conversation_id"]})
        elif streaming:
            await self._stream(app, ids, query, chunks, send)
        else:
            await self._json(send, 200, self._blocking(app, ids, "".join(chunks)))

    # --- /workflows/run and /completion-messages: the text in inputs.query ----------------------------------

    async def _run(self, app: DifyAppDouble, body: dict[str, Any], send: Send) -> None:
        query = (body.get("inputs") or {}).get("query")
        missing = [n for n in app.required_inputs if not str((body.get("inputs") or {}).get(n) or "").strip()]
        if not query or missing:
            await self._json(send, *_recorded_error(f"{app.mode}-err-missing-input"))
            return
        seen = self._files_seen(body)
        if seen is None:
            await self._json(send, *_recorded_error("advanced-chat-err-bad-upload-file-id"))
            return
        ids = {
            "conversation_id": "",
            "message_id": str(uuid.uuid4()),
            "task_id": str(uuid.uuid4()),
            "created_at": int(time.time()),
        }
        chunks = _answer_chunks(query, seen)
        if body.get("response_mode") == "streaming":
            await self._stream(app, ids, query, chunks, send)
        elif app.mode == "workflow":
            recorded = load("workflow-err-upstream-blocking" if "[fail]" in query else "workflow-blocking").json()
            recorded.update(task_id=ids["task_id"], workflow_run_id=ids["message_id"])
            if recorded["data"]["status"] == "succeeded":
                recorded["data"]["outputs"] = {"answer": "".join(chunks), "query": query}
            await self._json(send, 200, recorded)
        elif "[fail]" in query:
            await self._json(send, *_recorded_error("completion-err-upstream-blocking"))
        else:
            recorded = load("completion-blocking").json()
            recorded.update(task_id=ids["task_id"], id=ids["message_id"], message_id=ids["message_id"])
            recorded.update(answer="".join(chunks), created_at=ids["created_at"])
            await self._json(send, 200, recorded)

    async def _events_only(self, send: Send, events: list[dict[str, Any]]) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        body = b"event: ping\n\n" + b"".join(b"data: " + dumps(e) + b"\n\n" for e in events)
        await send({"type": "http.response.body", "body": body})

    def _blocking(self, app: DifyAppDouble, ids: dict[str, Any], answer: str) -> dict[str, Any]:
        recorded: dict[str, Any] = load(
            "advanced-chat-blocking" if app.mode == "advanced-chat" else "chat-blocking"
        ).json()
        recorded.update(task_id=ids["task_id"], id=ids["message_id"], message_id=ids["message_id"])
        recorded.update(conversation_id=ids["conversation_id"], answer=answer, created_at=ids["created_at"])
        return recorded

    async def _stream(self, app: DifyAppDouble, ids: dict[str, Any], query: str, chunks: list[str], send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream; charset=utf-8")],
            }
        )
        if self.current and app.mode in ("advanced-chat", "workflow"):  # run in a worker: a keep-alive comes first
            await send({"type": "http.response.body", "body": b"event: ping\n\n", "more_body": True})
        slow = "[slow]" in query
        delay = self.slow_delay if slow else self.chunk_delay
        last_ping = time.monotonic()
        for payload in self._events(app, ids, query, chunks):
            if payload is None:
                break  # [truncate]: the stream ends without its terminal event
            if payload.get("event") == "drop":
                raise ConnectionResetError("dropped on purpose")
            if payload.get("event") in ("message", "agent_message", "text_chunk", "message_file") and _text_of(payload):
                if ids["task_id"] in self.stopped:
                    continue  # stopped: Dify still ends with message_end, after the partial answer
                if delay:
                    await asyncio.sleep(delay)
                if slow and time.monotonic() - last_ping >= self.ping_interval:
                    last_ping = time.monotonic()
                    await send({"type": "http.response.body", "body": b"event: ping\n\n", "more_body": True})
            await send({"type": "http.response.body", "body": b"data: " + dumps(payload) + b"\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _events(self, app: DifyAppDouble, ids: dict[str, Any], query: str, chunks: list[str]) -> list[Any]:
        if "[fail]" in query:
            name = {
                "agent-chat": "agent-chat-err-upstream-streaming",
                "advanced-chat": "advanced-chat-err-upstream-streaming",
                "agent": "dify-1.15/agent-err-model-failed-streaming",
                "completion": "completion-err-upstream-streaming",
                "workflow": "workflow-err-upstream-streaming",
            }
            return [_with_ids(e, ids) for e in load(name.get(app.mode, "chat-err-upstream-streaming")).events()]
        kind = "agent-tool" if app.mode == "agent-chat" and "weather" in query.lower() else app.mode
        out: list[Any] = []
        content_done = False
        for template in self._templates[kind]:
            event = _with_ids(template, ids)
            if event["event"] == "workflow_finished":
                event["data"] = {**event["data"], "outputs": {"answer": "".join(chunks), "query": query}}
            if event["event"] in ("message", "agent_message", "text_chunk"):
                if content_done:
                    continue
                content_done = True
                disguised = False
                if "[image]" in query and event["event"] != "text_chunk":
                    out.append(_message_file(event))
                    disguised = self.current and app.mode in ("chat", "agent-chat")  # the easy-UI pipeline's quirk
                for text in chunks:
                    if disguised:
                        out.append({**event, "event": "message_file", "answer": text, "from_variable_selector": None})
                    elif event["event"] == "text_chunk":
                        out.append({**event, "data": {**event["data"], "text": text}})
                    elif app.agent_1_16:
                        out.append({**event, "event": "agent_message", "answer": text})
                    else:
                        out.append({**event, "answer": text})
                if app.agent_1_16:  # Dify 1.16's New Agent closes with the whole answer
                    out.append({**event, "answer": "".join(chunks)})
                if "[drop]" in query:
                    out.append({"event": "drop"})
                if "[truncate]" in query:
                    out.append(None)
                continue
            out.append(event)
        return out


def _form(headers: dict[str, str], raw: bytes) -> dict[str, tuple[dict[str, str], bytes]]:
    """A multipart form's parts by name: (their `name`, `filename`, `content_type`; their bytes)."""
    boundary = headers.get("content-type", "").partition("boundary=")[2].strip('"').encode()
    fields: dict[str, tuple[dict[str, str], bytes]] = {}
    for chunk in raw.split(b"--" + boundary)[1:-1]:
        head, _, data = chunk.removeprefix(b"\r\n").removesuffix(b"\r\n").partition(b"\r\n\r\n")
        meta = dict(re.findall(r'(\w+)="([^"]*)"', head.decode()))
        content_type = re.search(r"content-type:\s*(\S+)", head.decode(), re.I)
        meta["content_type"] = content_type.group(1) if content_type else ""
        fields[meta.get("name", "")] = (meta, data)
    return fields


def _message_file(event: dict[str, Any]) -> dict[str, Any]:
    """An image the app made, as Dify sends it: signed, and relative to Dify unless its FILES_URL is set."""
    file_id = str(uuid.uuid4())
    envelope: dict[str, Any] = {k: event[k] for k in ("conversation_id", "message_id", "created_at", "task_id")}
    url = f"/files/tools/{file_id}.png?timestamp={int(time.time())}&nonce=n0&sign=s1g"
    return {"event": "message_file", **envelope, "id": file_id, "type": "image", "belongs_to": "assistant", "url": url}


def _never_ran(message: str) -> dict[str, Any]:
    """Current Dify's refused input: a run that never ran a step, named by no conversation or message."""
    run = str(uuid.uuid4())
    data: dict[str, Any] = {"status": "failed", "error": message, "outputs": None, "total_steps": 0, "created_by": {}}
    return {"event": "workflow_finished", "task_id": run, "workflow_run_id": run, "data": data}


def _text_of(payload: dict[str, Any]) -> str:
    data = payload.get("data")
    return str(payload.get("answer") or (data.get("text") if isinstance(data, dict) else "") or "")


def _with_ids(template: dict[str, Any], ids: dict[str, Any]) -> dict[str, Any]:
    event = dict(template)
    for name in ("conversation_id", "message_id", "created_at"):
        if name in event:
            event[name] = ids[name]
    if "task_id" in event:
        event["task_id"] = ids["task_id"]
    if "workflow_run_id" in event:
        event["workflow_run_id"] = ids["message_id"]
    if event.get("event") in ("message", "agent_message", "message_end"):
        event["id"] = ids["message_id"]
    return event


_CHUNKS = re.compile(r"\[chunks=(\d+)\]")


def _answer_chunks(query: str, files: str | None = None) -> list[str]:
    many = _CHUNKS.search(query)
    if many:
        return [f"tok{i} " for i in range(int(many.group(1)))]
    if "[object]" in query:
        return ["Sure, here it is:\n```json\n", '{"title": "A title', ' from Dify"}\n```']
    words = f"Echo: {query}{f' [files: {files}]' if files else ''}".split(" ")
    chunks = [" ".join(words[i : i + 3]) + (" " if i + 3 < len(words) else "") for i in range(0, len(words), 3)]
    if "[think]" in query:  # a reasoning model, its thinking tagged in the answer (graphon's default), split mid-tag
        chunks = ["<thi", "nk>pondering about ", "it</th", "ink>\n\n", *chunks]
    return chunks


class ServerThread:
    """Serve an ASGI app with uvicorn on 127.0.0.1 in a background thread."""

    def __init__(self, app: Any, port: int = 0, **options: Any) -> None:
        self.config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, **options)
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "ServerThread":
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    @property
    def port(self) -> int:
        sockets = self.server.servers[0].sockets
        return int(sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
