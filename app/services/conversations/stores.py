"""Where remembered turns live: in memory (one process) or Redis (shared by every process and instance)."""

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol


class ConversationStore(Protocol):
    async def get_many(self, keys: list[str]) -> list[str | None]: ...
    async def set_many(self, items: dict[str, str]) -> None: ...
    async def compare_and_set(self, key: str, expected: str, value: str) -> bool: ...
    async def delete_many(self, keys: list[str]) -> None: ...
    async def ping(self) -> None: ...
    async def close(self) -> None: ...


class MemoryStore:
    """One process: entries expire `ttl` seconds after they were written; past `max_entries` the least recently
    used go first. One OrderedDict (C) is the index and the recency order: a read or a write moves its key to the
    end, eviction takes from the front, and an expired entry is dropped when it is met. cachetools' TTLCache does
    the same in Python, about 2 µs a write; a turn reads and writes several keys."""

    def __init__(self, *, ttl: float, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, str]] = OrderedDict()  # key -> (expires at, value)

    def _get(self, key: str, now: float) -> str | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= now:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def _set(self, key: str, value: str, now: float) -> None:
        entries = self._entries
        entries[key] = (now + self._ttl, value)
        entries.move_to_end(key)
        while len(entries) > self._max_entries:
            entries.popitem(last=False)
        while entries:  # (expired ones at the front go now; others when met, or evicted)
            oldest = next(iter(entries))
            if entries[oldest][0] > now:
                break
            del entries[oldest]

    def __len__(self) -> int:
        return len(self._entries)

    async def get_many(self, keys: list[str]) -> list[str | None]:
        now = self._clock()
        return [self._get(key, now) for key in keys]

    async def set_many(self, items: dict[str, str]) -> None:
        now = self._clock()
        for key, value in items.items():
            self._set(key, value, now)

    async def compare_and_set(self, key: str, expected: str, value: str) -> bool:
        # no await between the read and the write: atomic on the event loop
        now = self._clock()
        if self._get(key, now) != expected:
            return False
        self._set(key, value, now)
        return True

    async def delete_many(self, keys: list[str]) -> None:
        for key in keys:
            self._entries.pop(key, None)

    async def ping(self) -> None:
        """(Always there.)"""

    async def close(self) -> None:
        self._entries.clear()


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
