"""Runs python-websockets (the Debian python3-websockets package) as a SERVER for our client to talk to.

Usage: /usr/bin/python3 server.py
Listens on 127.0.0.1 port 0 and prints one JSON object per line on stdout: first {"event": "listening", "port": N},
then what it saw ({"event": "open" | "message" | "pong" | "close", "path": ...}) so tests can assert on the server's
side of each exchange. Exits when stdin reaches EOF (the test process ended) or on SIGTERM.

Paths:
  /echo          sends every message back unchanged, same type
  /server-close  waits for one message, then closes with 4002 "server bye"
  /ping-me       pings the client with b"server-ping", sends "pong:ok" (or "pong:timeout"), then echoes
Subprotocols: selects "chat.v1" when the client offers it, none otherwise.
"""

import asyncio

import websockets

from _common import close_frame, digest, emit, request_path, serve_until_stdin_closes

SERVE_OPTIONS = dict(compression=None, max_size=2**24, ping_interval=None, close_timeout=5, subprotocols=["chat.v1"])


def describe(message):
    """Up to 1 KiB in full (text, or bytes as hex); more as a digest."""
    if len(message.encode() if isinstance(message, str) else message) > 1024:
        return digest(message)
    return {"type": "text", "text": message} if isinstance(message, str) else {"type": "binary", "hex": message.hex()}


async def echo(ws, path):
    async for message in ws:
        emit({"event": "message", "path": path, "message": describe(message)})
        await ws.send(message)


async def handler(ws, _path=None):
    path = request_path(ws)
    emit({"event": "open", "path": path, "subprotocol": ws.subprotocol})
    try:
        if path == "/server-close":
            message = await ws.recv()
            emit({"event": "message", "path": path, "message": describe(message)})
            await ws.close(code=4002, reason="server bye")
        elif path == "/ping-me":
            pong_waiter = await ws.ping(b"server-ping")
            try:
                await asyncio.wait_for(pong_waiter, 5)
                emit({"event": "pong", "path": path})
                await ws.send("pong:ok")
            except asyncio.TimeoutError:
                await ws.send("pong:timeout")
            await echo(ws, path)
        else:
            await echo(ws, path)
    except websockets.ConnectionClosed:
        pass
    finally:
        await ws.wait_closed()
        emit({
            "event": "close", "path": path,
            "closeReceived": close_frame(ws, "close_rcvd"), "closeSent": close_frame(ws, "close_sent"),
        })


if __name__ == "__main__":
    serve_until_stdin_closes(handler, SERVE_OPTIONS)
