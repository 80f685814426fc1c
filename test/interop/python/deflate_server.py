"""Runs python-websockets (Debian python3-websockets) as a permessage-deflate SERVER for our client.

Usage: /usr/bin/python3 deflate_server.py [OPTIONS_JSON]
OPTIONS_JSON (optional) gives ServerPerMessageDeflateFactory arguments, e.g. {"server_max_window_bits": 10,
"client_max_window_bits": 9, "server_no_context_takeover": true}; without it websockets uses its default
(compression="deflate": server_max_window_bits=12, client_max_window_bits=12 when the client supports it).
Listens on 127.0.0.1 port 0, echoes every message on every path unchanged (same type), and prints one JSON
object per line: {"event": "listening", "port": N}, then "open" (with the negotiated extension), "message"
(type, bytes, sha256) and "close" events. Exits when stdin reaches EOF (the test process ended) or on SIGTERM.
"""

import json
import sys

import websockets
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

from _common import digest, emit, extension_state, request_path, serve_until_stdin_closes


async def handler(ws, _path=None):
    path = request_path(ws)
    emit({"event": "open", "path": path, "extensions": extension_state(ws),
          "requestExtensions": ws.request_headers.get("Sec-WebSocket-Extensions")})
    try:
        async for message in ws:
            emit({"event": "message", "path": path, "message": digest(message)})
            await ws.send(message)
    except websockets.ConnectionClosed:
        pass
    finally:
        emit({"event": "close", "path": path, "code": ws.close_code})


def serve_options():
    options = dict(max_size=2**24, ping_interval=None, close_timeout=5)
    if len(sys.argv) > 1:
        options["compression"] = None
        options["extensions"] = [ServerPerMessageDeflateFactory(**json.loads(sys.argv[1]))]
    else:
        options["compression"] = "deflate"
    return options


if __name__ == "__main__":
    serve_until_stdin_closes(handler, serve_options())
