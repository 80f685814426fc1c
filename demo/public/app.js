// Behaviour of the built-in demo page: one reconnecting WebSocket per panel (/chat and /echo), the chat and
// echo logs, and the status lines. Dependency-free; user text is only ever inserted with textContent.

const maxLogEntries = 200;
const firstRetryDelayMs = 500;
const maxRetryDelayMs = 10_000;

// RFC 6455 §7.4.1 and the IANA registry: what each close code means, for the status line.
const closeCodeNames = {
  1000: 'normal closure',
  1001: 'going away',
  1002: 'protocol error',
  1003: 'unsupported data',
  1005: 'no status code',
  1006: 'abnormal closure, no close frame',
  1007: 'invalid payload data',
  1008: 'policy violation',
  1009: 'message too big',
  1010: 'missing extension',
  1011: 'internal error',
  1012: 'service restart',
  1013: 'try again later',
  1015: 'TLS handshake failed',
};

// Tells this tab's own chat messages apart from other tabs' when the broadcast brings them back.
const tabId = Math.random().toString(36).slice(2, 10);

function socketUrl(path) {
  return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + path;
}

/** Hex of an ArrayBuffer or Uint8Array, a space between bytes. */
function toHex(bytes) {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  return Array.from(view, (byte) => byte.toString(16).padStart(2, '0')).join(' ');
}

function describeClose(event) {
  const name = closeCodeNames[event.code] ?? (event.code >= 4000 ? 'application code' : 'unknown code');
  const reason = event.reason === '' ? '' : `, reason "${event.reason}"`;
  return `code ${event.code} (${name})${reason}${event.wasClean ? '' : ', not clean'}`;
}

/**
 * A WebSocket to `path` on this origin that reconnects with exponential backoff (jittered, so many tabs do
 * not all return at the same instant after a server restart) until `disconnect()` is called.
 */
function managedSocket(path, { onMessage, onStateChange }) {
  const url = socketUrl(path);
  let ws = null;
  let failedAttempts = 0;
  let retryTimer = undefined;
  let wanted = true;

  function connect() {
    clearTimeout(retryTimer);
    onStateChange('connecting', `connecting to ${url}…`);
    const socket = new WebSocket(url);
    socket.binaryType = 'arraybuffer';
    ws = socket;
    socket.addEventListener('open', () => {
      failedAttempts = 0;
      onStateChange('open', `open: ${url}`);
    });
    socket.addEventListener('message', (event) => onMessage(event.data));
    // 'error' carries no detail in browsers; the 'close' that always follows it says what happened.
    socket.addEventListener('close', (event) => {
      if (ws !== socket) return;
      ws = null;
      const what = `closed: ${describeClose(event)}`;
      if (!wanted) {
        onStateChange('closed', what);
        return;
      }
      const baseDelayMs = Math.min(maxRetryDelayMs, firstRetryDelayMs * 2 ** failedAttempts);
      const delayMs = Math.round(baseDelayMs * (0.5 + Math.random() / 2));
      failedAttempts += 1;
      onStateChange('closed', `${what}; reconnecting in ${(delayMs / 1000).toFixed(1)} s`);
      retryTimer = setTimeout(connect, delayMs);
    });
  }

  connect();
  return {
    get isOpen() {
      return ws !== null && ws.readyState === WebSocket.OPEN;
    },
    send(data) {
      if (ws === null || ws.readyState !== WebSocket.OPEN) return false;
      ws.send(data);
      return true;
    },
    disconnect() {
      wanted = false;
      clearTimeout(retryTimer);
      if (ws !== null) ws.close(1000, 'closed from the demo page');
      else onStateChange('closed', 'closed');
    },
    reconnect() {
      wanted = true;
      failedAttempts = 0;
      if (ws === null) connect();
    },
  };
}

/** Appends one entry built from [className, text] parts; keeps the log short and follows it if at the bottom. */
function appendLog(list, parts, entryClass = '') {
  const followBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 24;
  const item = document.createElement('li');
  if (entryClass !== '') item.className = entryClass;
  const time = document.createElement('span');
  time.className = 'meta';
  time.textContent = new Date().toLocaleTimeString();
  item.append(time);
  for (const [className, text] of parts) {
    const span = document.createElement('span');
    if (className !== '') span.className = className;
    span.textContent = text;
    item.append(span);
  }
  list.append(item);
  while (list.children.length > maxLogEntries) list.firstElementChild.remove();
  if (followBottom) list.scrollTop = list.scrollHeight;
}

/** Wires a panel's status line, connect toggle and send controls to a managed socket. */
function setUpPanel({ path, statusLine, toggle, controls, onMessage, onClosed }) {
  const socket = managedSocket(path, {
    onMessage,
    onStateChange(state, text) {
      statusLine.dataset.state = state;
      statusLine.textContent = text;
      for (const control of controls) control.disabled = state !== 'open';
      if (state !== 'open') onClosed?.();
    },
  });
  let connected = true;
  toggle.addEventListener('click', () => {
    connected = !connected;
    toggle.textContent = connected ? 'Disconnect' : 'Connect';
    if (connected) socket.reconnect();
    else socket.disconnect();
  });
  return socket;
}

// ---- chat (/chat): every message goes to every connection, this tab included ----

const chatLog = document.getElementById('chat-log');
const chatForm = document.getElementById('chat-form');
const chatName = document.getElementById('chat-name');
const chatText = document.getElementById('chat-text');

try {
  chatName.value = localStorage.getItem('switchyard.chatName') ?? '';
} catch {
  // Storage can be off (private windows, file policies); a fresh name each visit is fine.
}
if (chatName.value === '') chatName.value = `guest-${Math.floor(100 + Math.random() * 900)}`;

function showChatMessage(data) {
  if (typeof data !== 'string') {
    // Other clients (a CLI, a script) may broadcast binary; show it rather than drop it.
    const bytes = new Uint8Array(data);
    const preview = toHex(bytes.subarray(0, 32)) + (bytes.length > 32 ? ' …' : '');
    appendLog(chatLog, [['meta', `binary, ${bytes.length} bytes`], ['mono', preview]]);
    return;
  }
  let message;
  try {
    message = JSON.parse(data);
  } catch {
    message = undefined;
  }
  const isChatMessage =
    typeof message === 'object' &&
    message !== null &&
    typeof message.name === 'string' &&
    typeof message.text === 'string';
  if (!isChatMessage) {
    // Not from this page (a CLI client, say): show the text as it came.
    appendLog(chatLog, [['meta', 'text'], ['', data]]);
    return;
  }
  appendLog(chatLog, [['who', message.name], ['', message.text]], message.from === tabId ? 'mine' : '');
}

const chat = setUpPanel({
  path: '/chat',
  statusLine: document.getElementById('chat-status'),
  toggle: document.getElementById('chat-toggle'),
  controls: [chatForm.querySelector('button[type="submit"]')],
  onMessage: showChatMessage,
});

chatForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const name = chatName.value.trim();
  const text = chatText.value.trim();
  if (name === '' || text === '') return;
  try {
    localStorage.setItem('switchyard.chatName', name);
  } catch {
    // See above: remembering the name is a nicety.
  }
  // No local echo: the broadcast sends our own message back, which shows the server really relayed it.
  if (chat.send(JSON.stringify({ from: tabId, name, text }))) {
    chatText.value = '';
    chatText.focus();
  }
});

// ---- echo (/echo): each message comes back unchanged ----

const echoLog = document.getElementById('echo-log');
const echoForm = document.getElementById('echo-form');
const echoText = document.getElementById('echo-text');
const echoBinary = document.getElementById('echo-binary');
// What we sent and have not seen again yet, oldest first: the echo must return them in order and unchanged.
let awaitingEcho = [];

function sameBytes(a, b) {
  const left = new Uint8Array(a);
  const right = new Uint8Array(b);
  return left.length === right.length && left.every((byte, i) => byte === right[i]);
}

function showEcho(data) {
  const expected = awaitingEcho.shift();
  const isText = typeof data === 'string';
  const matches =
    expected !== undefined &&
    (isText ? expected === data : typeof expected !== 'string' && sameBytes(expected, data));
  let verdict = ['ok', '✓ same'];
  if (expected === undefined) verdict = ['meta', 'not sent from here'];
  else if (!matches) verdict = ['bad', '✗ differs'];
  if (isText) appendLog(echoLog, [['meta', '← text'], ['', data], verdict]);
  else appendLog(echoLog, [['meta', `← binary ${data.byteLength} B`], ['mono', toHex(data)], verdict]);
}

const echo = setUpPanel({
  path: '/echo',
  statusLine: document.getElementById('echo-status'),
  toggle: document.getElementById('echo-toggle'),
  controls: [echoForm.querySelector('button[type="submit"]'), echoBinary],
  onMessage: showEcho,
  // Anything in flight when the connection dropped will never come back.
  onClosed: () => (awaitingEcho = []),
});

echoForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = echoText.value;
  if (!echo.send(text)) return;
  awaitingEcho.push(text);
  appendLog(echoLog, [['meta', '→ text'], ['', text === '' ? '(empty)' : text]]);
  echoText.value = '';
  echoText.focus();
});

echoBinary.addEventListener('click', () => {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  if (!echo.send(bytes.buffer)) return;
  awaitingEcho.push(bytes.buffer);
  appendLog(echoLog, [['meta', '→ binary 16 B'], ['mono', toHex(bytes.buffer)]]);
});

// ---- live readings (/sensors): the server publishes one JSON reading a second to every subscriber ----

const sensorsValue = document.getElementById('sensors-value');
const sensorsAt = document.getElementById('sensors-at');
const sensorsLine = document.getElementById('sensors-line');
const recentReadings = [];
const chartPoints = 60;

function showReading(data) {
  if (typeof data !== 'string') return;
  let reading;
  try {
    reading = JSON.parse(data);
  } catch {
    return;
  }
  if (typeof reading?.celsius !== 'number') return;
  sensorsValue.textContent = reading.celsius.toFixed(2);
  sensorsAt.textContent = typeof reading.at === 'string' ? new Date(reading.at).toLocaleTimeString() : '';
  recentReadings.push(reading.celsius);
  if (recentReadings.length > chartPoints) recentReadings.shift();
  const low = Math.min(...recentReadings);
  const span = Math.max(0.5, Math.max(...recentReadings) - low);
  sensorsLine.setAttribute('points', recentReadings
    .map((value, i) => `${(i * 300) / (chartPoints - 1)},${58 - ((value - low) / span) * 56}`)
    .join(' '));
}

setUpPanel({
  path: '/sensors',
  statusLine: document.getElementById('sensors-status'),
  toggle: document.getElementById('sensors-toggle'),
  controls: [],
  onMessage: showReading,
});
