// CGI scripts the tests install into a temp cgi-bin: small /bin/sh and /usr/bin/python3 programs, each written
// the way real CGI scripts are (echo-built headers with LF line ends, stdin read by CONTENT_LENGTH).

/** Prints the meta-variables a test checks, one `NAME=value` per line, and its arguments. */
export const envDump = `#!/bin/sh
printf 'Content-Type: text/plain\\n\\n'
for name in GATEWAY_INTERFACE SERVER_PROTOCOL REQUEST_METHOD SCRIPT_NAME PATH_INFO QUERY_STRING \\
    CONTENT_LENGTH CONTENT_TYPE REMOTE_ADDR SERVER_NAME SERVER_PORT HTTP_X_CUSTOM HTTP_PROXY; do
  eval "value=\\\${$name-<unset>}"
  printf '%s=%s\\n' "$name" "$value"
done
printf 'PWD=%s\\n' "$(pwd)"
printf 'ARGC=%s\\n' "$#"
for arg in "$@"; do printf 'ARG=%s\\n' "$arg"; done
`;

/** The classic shell CGI: Content-type in the old spelling, a blank \`echo\`, HTML built from QUERY_STRING. */
export const classicQuery = `#!/bin/sh
echo "Content-type: text/html"
echo
echo "<html><head><title>Query</title></head><body>"
name=$(echo "$QUERY_STRING" | sed -n 's/^.*name=\\([^&]*\\).*$/\\1/p' | sed 's/+/ /g; s/%20/ /g')
echo "<h1>Hello, $name</h1>"
echo "<p>You asked for: $QUERY_STRING</p>"
echo "</body></html>"
`;

/** The classic POST form handler: reads exactly CONTENT_LENGTH bytes of urlencoded form from stdin. */
export const classicForm = `#!/bin/sh
if [ "$REQUEST_METHOD" != "POST" ]; then
  echo "Status: 405 Method Not Allowed"
  echo "Content-type: text/plain"
  echo
  echo "POST only"
  exit 0
fi
form=$(head -c "$CONTENT_LENGTH")
echo "Content-type: text/plain"
echo
echo "type=$CONTENT_TYPE"
echo "length=$CONTENT_LENGTH"
echo "$form" | tr '&' '\\n'
`;

/** A python form handler in the same style (urllib instead of the cgi module, which Python 3.13 dropped). */
export const pythonForm = `#!/usr/bin/python3
import os, sys, urllib.parse
length = int(os.environ.get('CONTENT_LENGTH') or 0)
form = urllib.parse.parse_qs(sys.stdin.buffer.read(length).decode())
sys.stdout.write('Content-Type: text/plain; charset=utf-8\\r\\n\\r\\n')
for key in sorted(form):
    sys.stdout.write('%s=%s\\n' % (key, ','.join(form[key])))
`;

/** Echoes stdin back as the body with a checksum, for large uploads (Content-Length and chunked). */
export const pythonEcho = `#!/usr/bin/python3
import hashlib, os, sys
length = int(os.environ.get('CONTENT_LENGTH') or 0)
data = sys.stdin.buffer.read(length)
extra = sys.stdin.buffer.read()  # must be empty: the server sends exactly CONTENT_LENGTH bytes then EOF
sys.stdout.write('Content-Type: application/octet-stream\\n')
sys.stdout.write('X-Length: %d\\nX-Sha256: %s\\nX-Extra: %d\\n\\n' % (len(data), hashlib.sha256(data).hexdigest(), len(extra)))
sys.stdout.flush()
`;

/** Writes 64 KiB blocks forever (up to 512 MiB), reporting the running total on stderr after each. */
export const pythonFlood = `#!/usr/bin/python3
import sys
sys.stdout.write('Content-Type: application/octet-stream\\n\\n')
sys.stdout.flush()
block = b'x' * 65536
total = 0
while total < 512 * 1024 * 1024:
    sys.stdout.buffer.write(block)
    sys.stdout.buffer.flush()
    total += len(block)
    sys.stderr.write('total %d\\n' % total)
    sys.stderr.flush()
`;

/** Headers, then a slow body: one line every 100 ms for a long time (a script a client leaves mid-response). */
export const slowBody = `#!/bin/sh
echo "Content-Type: text/plain"
echo
echo "pid $$"
i=0
while [ $i -lt 600 ]; do echo "line $i"; i=$((i + 1)); sleep 0.1; done
`;

/** Never answers; starts a grandchild (\`sleep\`) in the background that holds stdout open, and records its pid. */
export function hangWithGrandchild(pidFile: string): string {
  return `#!/bin/sh
sleep 300 &
echo $! > '${pidFile}'
echo "hanging" >&2
wait
`;
}

/** Sends headers and part of a body, then hangs. */
export const hangAfterHeaders = `#!/bin/sh
echo "Content-Type: text/plain"
echo
echo "partial"
exec sleep 300
`;

/** Exits 3 without any output, after a few stderr lines. */
export const failsSilently = `#!/bin/sh
echo "starting up" >&2
echo "fatal: database unreachable" >&2
exit 3
`;

/** Prints a line that is not a header. */
export const notAHeader = `#!/bin/sh
echo "oops: something went wrong" >&2
echo "Hello world"
echo
echo "body"
`;

/** A header block with no Content-Type, Location or Status. */
export const noCgiField = `#!/bin/sh
echo "X-Only: this"
echo
echo "body"
`;

/** Writes header lines forever (never the blank line). */
export const endlessHeaders = `#!/bin/sh
echo "Content-Type: text/plain"
while :; do echo "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"; done
`;

/** Status and other fields, repeated Set-Cookie, a hop-by-hop field that must be dropped. */
export const withStatus = `#!/bin/sh
echo "Status: 418 I'm a teapot"
echo "Content-Type: text/plain"
echo "Set-Cookie: a=1"
echo "Set-Cookie: b=2"
echo "X-Custom: kept"
echo "Connection: close-me-not"
echo "Transfer-Encoding: gzip"
echo
echo "short and stout"
`;

/** A header whose value carries a CR: an attempt to add a line or split the response. */
export const crInjection = `#!/bin/sh
printf 'Content-Type: text/plain\\n'
printf 'X-Evil: a\\rInjected: yes\\n'
printf '\\nbody\\n'
`;

/** §6.2.3: an absolute Location alone. */
export const clientRedirect = `#!/bin/sh
echo "Location: https://example.com/elsewhere?x=1"
echo
`;

/** §6.2.4: an absolute Location with a Status and a document. */
export const clientRedirectWithDocument = `#!/bin/sh
echo "Status: 301 Moved Permanently"
echo "Location: https://example.com/moved"
echo "Content-Type: text/html"
echo
echo "<a href=\\"https://example.com/moved\\">moved</a>"
`;

/** §6.2.2: a local path under the mount (another script, with a query). */
export const localRedirect = `#!/bin/sh
echo "Location: /cgi-bin/env.cgi/from-redirect?redirected=1"
echo
`;

/** §6.2.2: a local path outside the mount. */
export const localRedirectOutside = `#!/bin/sh
echo "Location: /static/page.html"
echo
`;

/** A local redirect to itself, forever. */
export const redirectLoop = `#!/bin/sh
echo "Location: /cgi-bin/loop.cgi"
echo
`;

/** Declares a Content-Length and sends more than that. */
export const contentLengthTooShort = `#!/bin/sh
printf 'Content-Type: text/plain\\nContent-Length: 5\\n\\nhello, and then some more\\n'
`;

/** Declares a Content-Length and sends less than that. */
export const contentLengthTooLong = `#!/bin/sh
printf 'Content-Type: text/plain\\nContent-Length: 100\\n\\nonly this\\n'
`;

/** Writes its stdin's byte count after reading it all, and something on stderr. */
export const stderrLines = `#!/bin/sh
echo "first problem" >&2
printf 'second problem\\n' >&2
echo "Content-Type: text/plain"
echo
echo "ok"
`;
