"""Synthetic traffic for the demo: who calls log_event on what, and when.

This decides only the *inputs* of log_event calls (a traffic simulator); every outcome and every count
comes from the database. Calls are sharded by visitor, and each visitor's calls are made in time order,
so outcomes do not depend on thread interleaving and a fixed seed reproduces them exactly.
"""

from __future__ import annotations

import bisect
import random
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
]
CRAWLER = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
ABUSIVE_IP = "198.51.100.66"
REFERRERS = [None, "https://www.google.com/", "https://news.ycombinator.com/", "https://github.com/", None]
KIND_MIX = [("view", 80), ("copy", 8), ("download", 5), ("template_use", 4), ("builder_export", 3)]


@dataclass(frozen=True)
class Call:
    at: datetime
    target_type: str
    target_id: str
    kind: str
    user_id: str | None
    session_id: str | None
    ip: str | None
    user_agent: str | None
    referrer: str | None
    shard: int


@dataclass
class Traffic:
    calls: list[Call] = field(default_factory=list)

    def for_shard(self, shard: int) -> list[Call]:
        return [c for c in self.calls if c.shard == shard]


def _zipf_cdf(n: int, exponent: float = 1.1) -> list[float]:
    weights = [1.0 / (rank**exponent) for rank in range(1, n + 1)]
    total, acc, cdf = sum(weights), 0.0, []
    for w in weights:
        acc += w
        cdf.append(acc / total)
    return cdf


def simulate(
    catalogue: list[tuple[str, str, str | None, str]],
    *,
    events: int,
    days: int,
    end: datetime,
    seed: int,
    shards: int,
) -> Traffic:
    """``catalogue`` rows are (target_type, id, owner_id, visibility), in popularity order."""
    rng = random.Random(seed)
    cdf = _zipf_cdf(len(catalogue))
    kinds, kind_weights = zip(*KIND_MIX, strict=True)
    start = end - timedelta(days=days)
    visitors = max(50, events // 12)
    calls: list[Call] = []

    def visitor(n: int) -> tuple[str | None, str | None, str | None, str]:
        ip = f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
        agent = BROWSERS[n % len(BROWSERS)]
        if n % 10 < 3:
            return f"user-{n}", f"sess-{n}", ip, agent  # signed in
        if n % 10 < 9:
            return None, f"sess-{n}", ip, agent  # anonymous with a session cookie
        return None, None, ip, agent  # anonymous, no cookie: ip + user agent

    budget_normal = int(events * 0.93)
    while len(calls) < budget_normal:
        n = rng.randrange(visitors)
        user_id, session_id, ip, agent = visitor(n)
        target = catalogue[bisect.bisect_left(cdf, rng.random())]
        owner_views = target[3] == "private"
        if owner_views:
            user_id = target[2]  # private targets are mostly visited by their owners
        at = start + timedelta(seconds=rng.uniform(0, days * 86400))
        kind = rng.choices(kinds, kind_weights)[0]
        referrer = rng.choice(REFERRERS)
        repeats = 1 + (rng.random() < 0.25) * rng.randrange(1, 4)  # re-views within the debounce window
        # One shard per viewer identity, so each identity's calls keep their order.
        shard = zlib.crc32((user_id or session_id or ip or "").encode()) % shards
        for r in range(repeats):
            calls.append(Call(at + timedelta(minutes=3 * r), target[0], target[1], kind if r == 0 else "view",
                              user_id, session_id, ip, agent, referrer, shard))

    for _ in range(int(events * 0.03)):  # a crawler sweeping the catalogue
        target = rng.choice(catalogue)
        at = start + timedelta(seconds=rng.uniform(0, days * 86400))
        calls.append(Call(at, target[0], target[1], "view", None, None, "66.249.66.1", CRAWLER, None, 0))

    burst_start = end - timedelta(days=2, hours=3)
    popular = catalogue[:20]
    for i in range(events - len(calls)):  # one address hammering downloads for a few minutes
        target = popular[i % len(popular)]
        at = burst_start + timedelta(seconds=i * 0.4)
        calls.append(Call(at, target[0], target[1], "download", None, None, ABUSIVE_IP,
                          "Mozilla/5.0 (X11; Linux x86_64) Scraper", None, zlib.crc32(ABUSIVE_IP.encode()) % shards))

    calls.sort(key=lambda c: c.at)
    return Traffic(calls)
