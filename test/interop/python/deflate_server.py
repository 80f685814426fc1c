"""Runs python-websockets (Debian python3-websockets) as a permessage-deflate SERVER for our client.

Usage: /usr/bin/python3 deflate_server.py [OPTIONS_JSON]
OPTIONS_JSON (optional) gives ServerPerMessageDeflateFactory arguments, e.g. {"server_max_window_bits": 10,
"client_max_window_bits": 9, "server_no_context_takeover": true}; without it websockets uses its default
(compression="deflate": server_max_window_bits=12, client_max_window_bits=12 when the client supports it).
Listens on 127.0.0.1 port 0, echoes every message on every path unchanged (same type), and prints one JSON
object per line: {"event": "listening", "port": N}, then "open" (with the negotiated extension), "message"
(type, bytes, sha256) and "close" events. Exits when stdin reaches EOF (the test process ended) or on SIGTERM.
"""

import asyncio
import hashlib
import json
import os
import sys
import threading

import websockets
from websockets.extensions.permessage_deflate import PerMessageDeflate, ServerPerMessageDeflateFactory


def emit(event):
    print(json.dumps(event), flush=True)


def describe(message):
    raw = message.encode() if isinstance(message, str) else message
    return {"type": "text" if isinstance(message, str) else "binary", "bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}


def extension_state(ws):
    return [
        {
            "name": e.name,
            "remote_no_context_takeover": e.remote_no_context_takeover,
            "local_no_context_takeover": e.local_no_context_takeover,
            "remote_max_window_bits": e.remote_max_window_bits,
            "local_max_window_bits": e.local_max_window_bits,
        } if isinstance(e, PerMessageDeflate) else {"name": e.name}
        for e in ws.extensions
    ]


async def handler(ws, path=None):
    path = path if path is not None else ws.path
    emit({"event": "open", "path": path, "extensions": extension_state(ws),
          "requestExtensions": ws.request_headers.get("Sec-WebSocket-Extensions")})
    try:
        async for message in ws:
            emit({"event": "message", "path": path, "message": describe(message)})
            await ws.send(message)
    except websockets.ConnectionClosed:
        pass
    finally:
        emit({"event": "close", "path": path, "code": ws.close_code})


def exit_when_stdin_closes():
    sys.stdin.read()
    os._exit(0)


async def main():
    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    options = dict(max_size=2**24, ping_interval=None, close_timeout=5)
    if len(sys.argv) > 1:
        options["compression"] = None
        options["extensions"] = [ServerPerMessageDeflateFactory(**json.loads(sys.argv[1]))]
    else:
        options["compression"] = "deflate"
    async with websockets.serve(handler, "127.0.0.1", 0, **options) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        emit({"event": "listening", "port": port, "websocketsVersion": websockets.__version__})
        await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
