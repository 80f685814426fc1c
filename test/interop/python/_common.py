"""What the Python peers in this folder share (client.py, deflate_client.py, server.py, deflate_server.py).

Imported as a sibling module: python puts a script's own folder first on sys.path. Written for the asyncio API
of websockets 10.x (Debian bookworm ships 10.4); the fallbacks cover the attribute moves of websockets >= 14.
"""

import asyncio
import hashlib
import json
import os
import sys
import threading

import websockets
from websockets.extensions.permessage_deflate import PerMessageDeflate

STEP_TIMEOUT_S = 5


def emit(event):
    """Prints one JSON line and flushes it, so the test reads it at once."""
    print(json.dumps(event), flush=True)


def digest(message):
    """A message as its type, byte count and SHA-256 (for messages too large to print)."""
    raw = message.encode() if isinstance(message, str) else message
    return {"type": "text" if isinstance(message, str) else "binary", "bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}


def close_frame(ws, which):
    """The close frame sent or received, as {code, reason}, or None (close_sent/close_rcvd, websockets >= 10)."""
    frame = getattr(ws, which, None)
    if frame is None and hasattr(ws, "protocol") and not isinstance(ws.protocol, str):
        frame = getattr(ws.protocol, which, None)  # websockets >= 14 keeps them on the sans-I/O protocol
    return None if frame is None else {"code": frame.code, "reason": frame.reason}


def request_path(ws):
    path = getattr(ws, "path", None)
    if path is None:
        path = ws.request.path  # websockets >= 14
    return path


def extension_state(ws):
    """The negotiated extensions as websockets sees them (permessage-deflate with its parameters)."""
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


async def recv(ws):
    """The next message, or TimeoutError after STEP_TIMEOUT_S."""
    try:
        return await asyncio.wait_for(ws.recv(), STEP_TIMEOUT_S)
    except asyncio.TimeoutError:
        raise TimeoutError(f"no message within {STEP_TIMEOUT_S} s") from None


def run_client(scenario):
    """Runs a client coroutine (30 s at most) and prints its result, or {"error": ...}, as one JSON object.

    Returns the exit status: 0 when the scenario ran to the end (the test decides pass/fail), 1 otherwise.
    """
    try:
        result = asyncio.run(asyncio.wait_for(scenario, 30))
    except Exception as error:  # the test prints this as what came back
        print(json.dumps({"error": f"{type(error).__name__}: {error}", "websocketsVersion": websockets.__version__}), flush=True)
        return 1
    result["websocketsVersion"] = websockets.__version__
    print(json.dumps(result), flush=True)
    return 0


def _exit_when_stdin_closes():
    # The parent holds our stdin open; EOF means it is gone, so do not outlive it.
    sys.stdin.read()
    os._exit(0)


async def _serve(handler, options):
    threading.Thread(target=_exit_when_stdin_closes, daemon=True).start()
    async with websockets.serve(handler, "127.0.0.1", 0, **options) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        emit({"event": "listening", "port": port, "websocketsVersion": websockets.__version__})
        await asyncio.Future()


def serve_until_stdin_closes(handler, options):
    """Serves `handler` on 127.0.0.1 port 0, prints {"event": "listening", "port": N}, and runs until stdin
    reaches EOF (the test process ended) or SIGTERM."""
    try:
        asyncio.run(_serve(handler, options))
    except KeyboardInterrupt:
        pass
