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
import hashlib
import json
import os
import sys
import threading

import websockets

SERVE_OPTIONS = dict(compression=None, max_size=2**24, ping_interval=None, close_timeout=5, subprotocols=["chat.v1"])


def emit(event):
    print(json.dumps(event), flush=True)


def describe(message):
    raw = message.encode() if isinstance(message, str) else message
    kind = "text" if isinstance(message, str) else "binary"
    if len(raw) > 1024:
        return {"type": kind, "bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
    return {"type": kind, "text": message} if kind == "text" else {"type": kind, "hex": message.hex()}


def close_frame(ws, which):
    frame = getattr(ws, which, None)
    if frame is None and hasattr(ws, "protocol") and not isinstance(ws.protocol, str):
        frame = getattr(ws.protocol, which, None)  # websockets >= 14
    return None if frame is None else {"code": frame.code, "reason": frame.reason}


def request_path(ws):
    path = getattr(ws, "path", None)
    if path is None:
        path = ws.request.path  # websockets >= 14
    return path


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


def exit_when_stdin_closes():
    # The parent holds our stdin open; EOF means it is gone, so do not outlive it.
    sys.stdin.read()
    os._exit(0)


async def main():
    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    async with websockets.serve(handler, "127.0.0.1", 0, **SERVE_OPTIONS) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        emit({"event": "listening", "port": port, "websocketsVersion": websockets.__version__})
        await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
