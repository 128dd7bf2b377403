"""Rate limits (token buckets) and client network allow/deny lists."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable


class TokenBucket:
    """`rate` calls a second on average, up to `burst` at once."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, float(burst)
        self.tokens, self.stamp = float(burst), time.monotonic()

    def take(self) -> float:
        """0.0 if a call may go now (and spend its token), else the seconds until it may."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class Buckets:
    """One bucket per key (an app, a product), made on first use."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, key: str) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst)
        return bucket.take()


class ClientNetworks:
    """Deny wins; with an allow list, only its networks are served."""

    def __init__(self, allow: Iterable[str], deny: Iterable[str]) -> None:
        self.allow = [ipaddress.ip_network(c, strict=False) for c in allow]
        self.deny = [ipaddress.ip_network(c, strict=False) for c in deny]
        self._seen: dict[str, bool] = {}

    def permits(self, host: str | None) -> bool:
        if not self.allow and not self.deny:
            return True
        if host is None:
            return False
        known = self._seen.get(host)
        if known is not None:
            return known
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        ok = not any(address in n for n in self.deny) and (
            not self.allow or any(address in n for n in self.allow)
        )
        if len(self._seen) < 65536:
            self._seen[host] = ok
        return ok
