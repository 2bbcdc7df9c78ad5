"""Client CPU per call of bare HTTP loops, aiohttp (what the tool uses) against pyreqwest (a Rust
client, not a dependency: `pip install pyreqwest` to run its half), side by side in one run.

No cache, no checks, no tool code: one session, a semaphore of C, a POST of a ~200-word chat
body and a JSON parse of the reply per call, against the loopback OpenAI-compatible server in
its own process at 100 ms latency. It bounds what any change of HTTP client could save per
call (docs/benchmarks.md, "Client CPU per call on the HTTP path").

    .venv/bin/python benchmarks/http_clients.py [--calls 6000] [--concurrency 256] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import resource
import time
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp
import orjson
import uvloop

from persona_testbed.testing.loopback import LoopbackServer

BODY = {
    "model": "loopback",
    "messages": [{"role": "user", "content": "word " * 200}],
    "max_tokens": 64,
    "temperature": 0.0,
}
HEADERS = {"Content-Type": "application/json"}


def process_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def with_aiohttp(url: str, calls: int, concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(headers=HEADERS, connector=connector) as session:

        async def one(index: int) -> None:
            async with gate:
                body = orjson.dumps({**BODY, "seed": index})
                async with session.post(url, data=body) as reply:
                    orjson.loads(await reply.read())

        await asyncio.gather(*(one(i) for i in range(calls)))


async def with_pyreqwest(url: str, calls: int, concurrency: int) -> None:
    # Imported by name: an optional package the type checker need not know.
    builder: Any = importlib.import_module("pyreqwest.client").ClientBuilder()
    client = builder.max_connections(concurrency).default_headers(HEADERS).build()
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with gate:
            body = orjson.dumps({**BODY, "seed": index})
            reply = await client.post(url).body_bytes(body).build().send()
            orjson.loads(bytes(await reply.bytes()))

    await asyncio.gather(*(one(i) for i in range(calls)))
    await client.close()


Loop = Callable[[str, int, int], Coroutine[Any, Any, None]]


def measure(loop: Loop, url: str, calls: int, concurrency: int) -> tuple[float, float]:
    """(CPU ms per call, wall s) of one run of `loop` in a fresh event loop."""
    cpu, wall = process_cpu_s(), time.perf_counter()
    uvloop.run(loop(url, calls, concurrency))
    return (process_cpu_s() - cpu) / calls * 1000, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    loops: dict[str, Loop] = {"aiohttp": with_aiohttp}
    try:
        importlib.import_module("pyreqwest")
        loops["pyreqwest"] = with_pyreqwest
    except ImportError:
        print("pyreqwest is not installed: aiohttp only")
    with LoopbackServer(latency=0.1) as server:
        url = server.base_url + "/chat/completions"
        for loop in loops.values():  # warm-up: connections, imports
            measure(loop, url, args.calls // 10, args.concurrency)
        for round_index in range(args.rounds):
            for name, loop in loops.items():
                ms, wall = measure(loop, url, args.calls, args.concurrency)
                print(f"round {round_index} {name:9s} CPU {ms:.3f} ms/call, wall {wall:.1f} s")


if __name__ == "__main__":
    main()
