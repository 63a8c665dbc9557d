"""Delivering a batch of cache tags for ``tally listen``: stdout, a command, or an HTTP endpoint."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass


@dataclass
class Delivery:
    """Hands a batch of tags on, retrying with exponential backoff (0.5 s doubling to 60 s) until it succeeds.

    The batch stays locked in the outbox meanwhile (other consumers skip it), and is acknowledged only
    after this returns, so a delivery that never succeeds loses nothing: the tags wait.
    """

    command: str | None = None
    url: str | None = None
    timeout: float = 30.0

    def __call__(self, tags: list[str]) -> None:
        delay = 0.5
        while True:
            problem = self._attempt(tags)
            if problem is None:
                return
            print(f"tally listen: delivery failed ({problem}); retrying in {delay:.1f} s", file=sys.stderr, flush=True)
            time.sleep(delay)
            delay = min(delay * 2, 60.0)

    def _attempt(self, tags: list[str]) -> str | None:
        """None when delivered, else what went wrong."""
        if self.command:
            try:
                result = subprocess.run(self.command, shell=True, input="".join(f"{t}\n" for t in tags), text=True,
                                        check=False, timeout=self.timeout)
            except subprocess.TimeoutExpired:
                return f"{self.command!r} took longer than {self.timeout:.0f} s"
            return None if result.returncode == 0 else f"{self.command!r} exited with {result.returncode}"
        if self.url:
            request = urllib.request.Request(self.url, data=json.dumps({"tags": tags}).encode(), method="POST",
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return None if 200 <= response.status < 300 else f"HTTP {response.status}"
            except (urllib.error.URLError, OSError) as exc:
                return str(exc)
        for tag in tags:
            print(tag, flush=True)
        return None
