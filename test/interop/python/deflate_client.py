"""Drives python-websockets (Debian python3-websockets) as a permessage-deflate CLIENT against a server under test.

Usage: /usr/bin/python3 deflate_client.py URL [OFFER_JSON]
OFFER_JSON (optional) gives ClientPerMessageDeflateFactory arguments, e.g. {"server_max_window_bits": 10,
"client_max_window_bits": 10, "server_no_context_takeover": true}; without it websockets offers its default
("permessage-deflate; client_max_window_bits").
Sends a fixed set of messages (repeated 4 KiB JSON text, compressible binary, a tiny text, 256 KiB text, and
messages sent in fragments) one at a time, and prints one JSON object: the negotiated extension as websockets
sees it, the server's Sec-WebSocket-Extensions, and for every message whether its echo came back equal.
Exit status 0 when the scenario ran to the end (the test decides pass/fail), 1 with {"error": ...} otherwise.
"""

import json
import sys

import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

from _common import digest, extension_state, recv, run_client


def json_text(size, variant):
    """Compressible JSON-like text of exactly `size` UTF-8 bytes, with multi-byte characters."""
    rows = []
    total = 0
    while total < size:
        row = json.dumps({"id": len(rows), "variant": variant, "name": "caf\u00e9 \u20ac%d" % (len(rows) % 7), "ok": len(rows) % 3 == 0}, ensure_ascii=False)
        rows.append(row)
        total += len(row.encode()) + 1
    text = ("[" + ",".join(rows) + "]").encode()[:size].decode("utf-8", errors="ignore")
    return text + " " * (size - len(text.encode()))


def binary(size, variant):
    block = bytes((i * 7 + variant) % 251 for i in range(1024))
    return (block * (size // 1024 + 1))[:size]


async def run(url, offer):
    options = dict(max_size=2**24, ping_interval=None, open_timeout=5, close_timeout=5)
    if offer is None:
        options["compression"] = "deflate"
    else:
        options["compression"] = None
        options["extensions"] = [ClientPerMessageDeflateFactory(**offer)]
    async with websockets.connect(url, **options) as ws:
        results = []

        async def exchange(label, message, fragments=None):
            await ws.send(iter(fragments) if fragments is not None else message)
            echo = await recv(ws)
            results.append({"label": label, "sent": digest(message), "received": digest(echo), "equal": echo == message})

        for round in range(3):
            await exchange(f"json-4k-{round}", json_text(4096, round))
        for round in range(3):
            await exchange(f"binary-16k-{round}", binary(16384, round))
        await exchange("tiny-text", "hi")
        await exchange("text-256k", json_text(262144, 9))
        text = json_text(8192, 5)
        await exchange("fragmented-text", text, [text[:1000], text[1000:1001], "", text[1001:5000], text[5000:]])
        data = binary(30000, 3)
        await exchange("fragmented-binary", data, [data[:10], data[10:20000], data[20000:]])
        return {
            "extensions": extension_state(ws),
            "responseExtensions": ws.response_headers.get("Sec-WebSocket-Extensions"),
            "results": results,
        }


def main():
    if len(sys.argv) not in (2, 3):
        print(json.dumps({"error": "usage: deflate_client.py URL [OFFER_JSON]"}))
        return 2
    offer = json.loads(sys.argv[2]) if len(sys.argv) == 3 else None
    return run_client(run(sys.argv[1], offer))


if __name__ == "__main__":
    sys.exit(main())
