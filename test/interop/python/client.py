"""Drives python-websockets (the Debian python3-websockets package) as a CLIENT against a server under test.

Usage: /usr/bin/python3 client.py SCENARIO URL
Prints exactly one JSON object on stdout: what was sent and what came back, for the TypeScript test to assert on.
Exit status 0 when the scenario ran to the end (the test decides pass/fail), 1 with {"error": ...} otherwise.
Written for the asyncio API of websockets 10.x (Debian bookworm ships 10.4); later versions keep these calls.
"""

import asyncio
import hashlib
import json
import sys
import time

import websockets

from _common import STEP_TIMEOUT_S, close_frame, recv, run_client

# Deflate stays off: the server under test does not negotiate permessage-deflate yet.
CONNECT_OPTIONS = dict(compression=None, max_size=2**24, ping_interval=None, open_timeout=5, close_timeout=5)
LARGE_BYTES = 1 << 20


def describe(message):
    if isinstance(message, str):
        return {"type": "text", "text": message}
    return {"type": "binary", "hex": message.hex()}


def pattern(size):
    return bytes(i % 251 for i in range(size))


async def scenario_text(url):
    async with websockets.connect(url, **CONNECT_OPTIONS) as ws:
        sent = "hello from python-websockets \u2713 \U0001f600"
        await ws.send(sent)
        return {"sent": sent, "received": describe(await recv(ws))}


async def scenario_binary(url):
    async with websockets.connect(url, **CONNECT_OPTIONS) as ws:
        sent = bytes(range(256))
        await ws.send(sent)
        return {"sentHex": sent.hex(), "received": describe(await recv(ws))}


async def scenario_empty(url):
    async with websockets.connect(url, **CONNECT_OPTIONS) as ws:
        await ws.send("")
        text = await recv(ws)
        await ws.send(b"")
        binary = await recv(ws)
        return {"text": describe(text), "binary": describe(binary)}


async def scenario_large(url):
    async with websockets.connect(url, **CONNECT_OPTIONS) as ws:
        binary = pattern(LARGE_BYTES)
        await ws.send(binary)
        echoed_binary = await recv(ws)
        # Multi-byte UTF-8 (2, 3 and 4 bytes) so frame and chunk boundaries fall inside characters.
        text = ("\u00e9\u20ac\U0001f600a" * (LARGE_BYTES // 10 + 1))[: LARGE_BYTES // 4]
        await ws.send(text)
        echoed_text = await recv(ws)
        return {
            "binary": {
                "sentBytes": len(binary),
                "receivedType": "binary" if isinstance(echoed_binary, bytes) else "text",
                "receivedBytes": len(echoed_binary),
                "equal": echoed_binary == binary,
                "sha256Sent": hashlib.sha256(binary).hexdigest(),
                "sha256Received": hashlib.sha256(echoed_binary if isinstance(echoed_binary, bytes) else echoed_binary.encode()).hexdigest(),
            },
            "text": {
                "sentUtf8Bytes": len(text.encode()),
                "receivedType": "text" if isinstance(echoed_text, str) else "binary",
                "equal": echoed_text == text,
            },
        }


async def scenario_fragmented(url):
    async with websockets.connect(url, **CONNECT_OPTIONS) as ws:
        # An iterable makes websockets send one frame per item: a first frame with FIN=0, continuations, FIN=1
        # (an empty continuation included).
        text_fragments = ["frag-1 ", "", "frag-2 \u00e9 ", "frag-3"]
        await ws.send(iter(text_fragments))
        text = await recv(ws)
        binary_fragments = [b"\x00\x01", b"", b"\x02\x03\xff", b"\x80"]
        await ws.send(iter(binary_fragments))
        binary = await recv(ws)
        return {
            "textSent": "".join(text_fragments), "textReceived": describe(text),
            "binarySentHex": b"".join(binary_fragments).hex(), "binaryReceived": describe(binary),
        }


async def scenario_ping(url):
    async with websockets.connect(url, **CONNECT_OPTIONS) as ws:
        started = time.monotonic()
        pong_waiter = await ws.ping(b"python-ping")
        try:
            await asyncio.wait_for(pong_waiter, STEP_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise TimeoutError(f"no pong within {STEP_TIMEOUT_S} s") from None
        # The connection still carries data after the ping/pong.
        await ws.send("after-ping")
        after = await recv(ws)
        return {"pongReceived": True, "roundTripMs": (time.monotonic() - started) * 1000, "after": describe(after)}


async def scenario_client_close(url):
    ws = await websockets.connect(url, **CONNECT_OPTIONS)
    await ws.send("before-close")
    before = await recv(ws)
    # close() waits for the server's close frame (up to close_timeout) and the end of the TCP connection.
    await asyncio.wait_for(ws.close(code=4001, reason="bye"), STEP_TIMEOUT_S * 2)
    return {
        "before": describe(before),
        "closeSent": close_frame(ws, "close_sent"),
        "closeReceived": close_frame(ws, "close_rcvd"),
        "closeCode": ws.close_code,
        "closeReason": ws.close_reason,
    }


async def scenario_server_close(url):
    """Sends "bye"; the server's route answers by closing. Reports the close frame the server sent."""
    ws = await websockets.connect(url, **CONNECT_OPTIONS)
    await ws.send("bye")
    received = []
    closed_by = None
    try:
        while True:
            received.append(describe(await recv(ws)))
    except websockets.ConnectionClosed as closed:
        closed_by = type(closed).__name__
    await asyncio.wait_for(ws.wait_closed(), STEP_TIMEOUT_S)
    return {
        "received": received,
        "exception": closed_by,
        "closeReceived": close_frame(ws, "close_rcvd"),
        "closeSent": close_frame(ws, "close_sent"),
    }


async def scenario_subprotocol(url):
    async with websockets.connect(url, subprotocols=["chat.v1", "other"], **CONNECT_OPTIONS) as ws:
        await ws.send("proto?")
        return {"subprotocol": ws.subprotocol, "received": describe(await recv(ws))}


async def scenario_broadcast(url):
    """Two clients on one broadcast path: each must receive the other's message and its own."""
    async with websockets.connect(url, **CONNECT_OPTIONS) as a, websockets.connect(url, **CONNECT_OPTIONS) as b:
        await a.send("from-a")
        a_first = await recv(a)
        b_first = await recv(b)
        await b.send(b"from-b")
        a_second = await recv(a)
        b_second = await recv(b)
        return {
            "a": [describe(a_first), describe(a_second)],
            "b": [describe(b_first), describe(b_second)],
        }


async def closed_by_server_after(url, message):
    """Sends `message` and reports the close frame the server answers with (and any message before it)."""
    ws = await websockets.connect(url, **CONNECT_OPTIONS)
    await ws.send(message)
    received = []
    try:
        while True:
            received.append(describe(await recv(ws)))
    except websockets.ConnectionClosed:
        pass
    await asyncio.wait_for(ws.wait_closed(), STEP_TIMEOUT_S)
    return {"received": received, "closeReceived": close_frame(ws, "close_rcvd")}


async def scenario_oversize(url):
    """For a server limited to 1024-byte messages: one 2048-byte frame, then 4 fragments of 400 bytes."""
    return {
        "oneFrame": await closed_by_server_after(url, bytes(2048)),
        "fragments": await closed_by_server_after(url, iter([bytes(400)] * 4)),
    }


async def scenario_keepalive(url):
    """Stays idle for 1.5 s against a server pinging every 200 ms: python's automatic pongs must keep it open."""
    async with websockets.connect(url, **CONNECT_OPTIONS) as ws:
        answered = None
        if hasattr(ws, "pong") and hasattr(ws, "transfer_data_task"):
            # websockets' legacy protocol answers each ping by calling self.pong(): count those calls.
            answered = 0
            original_pong = ws.pong

            async def counting_pong(data=b""):
                nonlocal answered
                answered += 1
                return await original_pong(data)

            ws.pong = counting_pong
        await asyncio.sleep(1.5)
        await ws.send("still here")
        return {"pingsAnswered": answered, "after": describe(await recv(ws))}


SCENARIOS = {
    "oversize": scenario_oversize,
    "keepalive": scenario_keepalive,
    "text": scenario_text,
    "binary": scenario_binary,
    "empty": scenario_empty,
    "large": scenario_large,
    "fragmented": scenario_fragmented,
    "ping": scenario_ping,
    "client-close": scenario_client_close,
    "server-close": scenario_server_close,
    "subprotocol": scenario_subprotocol,
    "broadcast": scenario_broadcast,
}


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in SCENARIOS:
        print(json.dumps({"error": f"usage: client.py {{{'|'.join(SCENARIOS)}}} URL"}))
        return 2
    scenario, url = sys.argv[1], sys.argv[2]
    return run_client(SCENARIOS[scenario](url))


if __name__ == "__main__":
    sys.exit(main())
