"""httpx transports to choose from (DIFY_TRANSPORT); the client API stays httpx either way.

`aiohttp`: httpx requests carried by aiohttp's connection pool, which stays fast under concurrency where httpx's
own pool (httpcore) slows down (see the README's transport table). Errors are mapped to httpx's exception tree,
so the rest of the gateway sees only httpx.
"""

import aiohttp
import httpx
import yarl


class _AiohttpStream(httpx.AsyncByteStream):
    __slots__ = ("_response",)

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self):  # type: ignore[no-untyped-def]
        content = self._response.content
        try:
            while True:
                chunk = await content.readany()
                if not chunk:
                    return
                yield chunk
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise httpx.ReadTimeout(str(exc) or "read timed out") from exc
        except aiohttp.ClientError as exc:
            raise httpx.RemoteProtocolError(str(exc) or type(exc).__name__) from exc

    async def aclose(self) -> None:
        if self._response.content.at_eof():
            self._response.release()  # body read to the end: the connection goes back to the pool
        else:
            self._response.close()  # abandoned mid-body: this connection cannot be reused


class AiohttpTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, max_connections: int, keepalive_expiry: float = 30.0) -> None:
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[str, yarl.URL] = {}  # parsed once: the gateway calls a handful of fixed URLs

    def _open(self) -> aiohttp.ClientSession:
        # created lazily: aiohttp binds its session to the running event loop
        connector = aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=self._keepalive_expiry)
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            skip_auto_headers=("User-Agent",),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        timeout = request.extensions.get("timeout", {})
        client_timeout = aiohttp.ClientTimeout(
            total=None, connect=timeout.get("pool"), sock_connect=timeout.get("connect"), sock_read=timeout.get("read")
        )
        content = await request.aread()  # the gateway always sends bodies it has built in memory
        raw_url = str(request.url)
        url = self._urls.get(raw_url)
        if url is None:
            url = yarl.URL(raw_url, encoded=True)
            if len(self._urls) < 256:
                self._urls[raw_url] = url
        try:
            response = await session.request(
                request.method,
                url,
                headers=request.headers.multi_items(),
                data=content or None,
                allow_redirects=False,
                timeout=client_timeout,
            )
        except aiohttp.ClientConnectorError as exc:  # no connection: nothing was sent
            raise httpx.ConnectError(str(exc), request=request) from exc
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc) or "connect timed out", request=request) from exc
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from exc
        except aiohttp.ServerDisconnectedError as exc:  # the request may have been read: not safe to resend
            raise httpx.RemoteProtocolError(str(exc) or "server disconnected", request=request) from exc
        except aiohttp.ClientOSError as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.RemoteProtocolError(str(exc) or type(exc).__name__, request=request) from exc
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_AiohttpStream(response),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
