"""Where remembered turns live: in memory (one process) or Redis (shared by every process and instance)."""

import asyncio
from typing import Protocol

from cachetools import TTLCache


class ConversationStore(Protocol):
    async def get_many(self, keys: list[str]) -> list[str | None]: ...
    async def set_many(self, items: dict[str, str]) -> None: ...
    async def compare_and_set(self, key: str, expected: str, value: str) -> bool: ...
    async def delete_many(self, keys: list[str]) -> None: ...
    async def ping(self) -> None: ...
    async def close(self) -> None: ...


class MemoryStore:
    """One process: entries expire after `ttl` seconds; the oldest go first past `max_entries`."""

    def __init__(self, *, ttl: float, max_entries: int) -> None:
        self._cache: TTLCache[str, str] = TTLCache(maxsize=max_entries, ttl=ttl)

    async def get_many(self, keys: list[str]) -> list[str | None]:
        return [self._cache.get(key) for key in keys]

    async def set_many(self, items: dict[str, str]) -> None:
        self._cache.update(items)

    async def compare_and_set(self, key: str, expected: str, value: str) -> bool:
        # no await between the read and the write: atomic on the event loop
        if self._cache.get(key) != expected:
            return False
        self._cache[key] = value
        return True

    async def delete_many(self, keys: list[str]) -> None:
        for key in keys:
            self._cache.pop(key, None)

    async def ping(self) -> None:
        """(Always there.)"""

    async def close(self) -> None:
        self._cache.clear()


class StoreUnavailableError(Exception):
    """The shared store could not be reached; callers degrade to stateless behaviour."""


_COMPARE_AND_SET = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""


class RedisStore:
    """Shared by every gateway process and instance pointed at the same Redis. Every call is bounded by
    `timeout` seconds as a whole: a frozen Redis (accepting connections, never answering) costs no more."""

    PREFIX = "opendify:"

    def __init__(self, url: str, *, ttl: float, timeout: float = 0.5) -> None:
        from redis import asyncio as aioredis  # noqa: PLC0415  # imported only when Redis is configured

        self._redis = aioredis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._ttl = max(int(ttl), 1)
        self._timeout = timeout
        self._errors = (aioredis.RedisError, OSError, TimeoutError)
        self._compare_and_set = self._redis.register_script(_COMPARE_AND_SET)

    async def get_many(self, keys: list[str]) -> list[str | None]:
        try:
            async with asyncio.timeout(self._timeout):
                values = await self._redis.mget([self.PREFIX + key for key in keys])
        except self._errors as exc:
            raise StoreUnavailableError(str(exc) or type(exc).__name__) from exc
        return [value.decode() if isinstance(value, bytes) else value for value in values]

    async def set_many(self, items: dict[str, str]) -> None:
        try:
            async with asyncio.timeout(self._timeout), self._redis.pipeline(transaction=False) as pipe:
                for key, value in items.items():
                    _ = pipe.set(self.PREFIX + key, value, ex=self._ttl)
                await pipe.execute()
        except self._errors as exc:
            raise StoreUnavailableError(str(exc) or type(exc).__name__) from exc

    async def compare_and_set(self, key: str, expected: str, value: str) -> bool:
        try:
            async with asyncio.timeout(self._timeout):
                result = await self._compare_and_set(keys=[self.PREFIX + key], args=[expected, value, self._ttl])
        except self._errors as exc:
            raise StoreUnavailableError(str(exc) or type(exc).__name__) from exc
        return bool(result)

    async def delete_many(self, keys: list[str]) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await self._redis.delete(*(self.PREFIX + key for key in keys))
        except self._errors as exc:
            raise StoreUnavailableError(str(exc) or type(exc).__name__) from exc

    async def ping(self) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await self._redis.ping()
        except self._errors as exc:
            raise StoreUnavailableError(str(exc) or type(exc).__name__) from exc

    async def close(self) -> None:
        await self._redis.aclose()
