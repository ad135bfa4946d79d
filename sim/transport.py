"""The mock Keepa in process, on the real clock: a transport for `LiveRuntime`.

Like ``httpx.MockTransport``: the live runtime and its client are unchanged,
only what answers differs. Latency is slept for real.
"""

from __future__ import annotations

import asyncio
import time

from collector.runtime import Request, Response
from sim.keepa import MockKeepa
from sim.runtime import answer


def wall_ms() -> int:
    return int(time.time() * 1000)


class MockTransport:
    def __init__(self, server: MockKeepa, key: str = "live"):
        self.server = server
        self.key = key

    async def send(self, request: Request) -> Response:
        pending = self.server.begin(request.path, {**request.params, "key": self.key}, wall_ms())
        if pending.latency_ms:
            await asyncio.sleep(pending.latency_ms / 1000)
        return answer(*self.server.finish(pending, wall_ms()))
