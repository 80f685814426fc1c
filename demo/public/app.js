// Behaviour of the built-in demo page: one reconnecting WebSocket each for /sensors (readings and the viewer
// count), /chat and /echo; the chart, the figures, the logs and the status pills. Dependency-free; text from
// the network is only ever inserted with textContent, and the chart is built with createElementNS.

const maxLogEntries = 200;
const firstRetryDelayMs = 500;
const maxRetryDelayMs = 10_000;

// RFC 6455 §7.4.1 and the IANA registry: what each close code means, for the status tooltips.
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

const clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
const formatTime = (ms) => clock.format(new Date(ms));

/**
 * A WebSocket to `path` on this origin that reconnects with exponential backoff (jittered, so many tabs do
 * not all return at the same instant after a server restart) until `disconnect()` is called.
 * onStateChange(state, label, detail): state is 'connecting', 'open' or 'closed'; label is short.
 */
function managedSocket(path, { onMessage, onStateChange }) {
  const url = socketUrl(path);
  let ws = null;
  let failedAttempts = 0;
  let retryTimer = undefined;
  let wanted = true;

  function connect() {
    clearTimeout(retryTimer);
    onStateChange('connecting', 'connecting…', `connecting to ${url}`);
    const socket = new WebSocket(url);
    socket.binaryType = 'arraybuffer';
    ws = socket;
    socket.addEventListener('open', () => {
      failedAttempts = 0;
      onStateChange('open', 'live', `connected to ${url}`);
    });
    socket.addEventListener('message', (event) => onMessage(event.data));
    // 'error' carries no detail in browsers; the 'close' that always follows it says what happened.
    socket.addEventListener('close', (event) => {
      if (ws !== socket) return;
      ws = null;
      const what = `${url} closed: ${describeClose(event)}`;
      if (!wanted) {
        onStateChange('closed', 'disconnected', what);
        return;
      }
      const baseDelayMs = Math.min(maxRetryDelayMs, firstRetryDelayMs * 2 ** failedAttempts);
      const delayMs = Math.round(baseDelayMs * (0.5 + Math.random() / 2));
      failedAttempts += 1;
      onStateChange('closed', `reconnecting in ${(delayMs / 1000).toFixed(1)} s`, what);
      retryTimer = setTimeout(connect, delayMs);
    });
  }

  connect();
  return {
    send(data) {
      if (ws === null || ws.readyState !== WebSocket.OPEN) return false;
      ws.send(data);
      return true;
    },
    disconnect() {
      wanted = false;
      clearTimeout(retryTimer);
      if (ws !== null) ws.close(1000, 'closed from the demo page');
      else onStateChange('closed', 'disconnected', `${url} closed`);
    },
    reconnect() {
      wanted = true;
      failedAttempts = 0;
      if (ws === null) connect();
    },
  };
}

/** Wires a status pill, a connect toggle and the controls that need an open socket to a managed socket. */
function setUpPanel({ path, statusPill, toggle, controls, onMessage, onStateChange }) {
  const socket = managedSocket(path, {
    onMessage,
    onStateChange(state, label, detail) {
      statusPill.dataset.state = state;
      statusPill.textContent = label;
      statusPill.title = detail;
      for (const control of controls) control.disabled = state !== 'open';
      onStateChange?.(state);
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

/** Appends one entry built from [className, text] parts; keeps the log short and follows it if at the bottom. */
function appendLog(list, parts, entryClass = '') {
  const followBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 24;
  const item = document.createElement('li');
  if (entryClass !== '') item.className = entryClass;
  const time = document.createElement('time');
  time.className = 'stamp';
  time.textContent = formatTime(Date.now());
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

// ---- live readings (/sensors) ----

const windowMs = 120_000;
const tableRows = 8;
const svgNs = 'http://www.w3.org/2000/svg';

const sensorsValue = document.getElementById('sensors-value');
const sensorsTrend = document.getElementById('sensors-trend');
const sensorsMin = document.getElementById('sensors-min');
const sensorsMinAt = document.getElementById('sensors-min-at');
const sensorsMax = document.getElementById('sensors-max');
const sensorsMaxAt = document.getElementById('sensors-max-at');
const sensorsAvg = document.getElementById('sensors-avg');
const sensorsCount = document.getElementById('sensors-count');
const viewersCount = document.getElementById('viewers-count');
const viewersLabel = document.getElementById('viewers-label');
const chart = document.getElementById('sensors-chart');
const readingsBody = document.querySelector('#readings-table tbody');

/** Readings in time order: {t (ms), at (ISO, as sent), value, seq}. Kept across reconnects. */
let readings = [];
let intervalMs = 1000;

/** Adds readings newer than the last one held (a history after a reconnect overlaps what we have). */
function addReadings(list) {
  let added = false;
  for (const reading of list) {
    if (typeof reading?.celsius !== 'number' || typeof reading.at !== 'string') continue;
    const t = Date.parse(reading.at);
    if (Number.isNaN(t) || (readings.length > 0 && t <= readings[readings.length - 1].t)) continue;
    readings.push({ t, at: reading.at, value: reading.celsius, seq: reading.seq });
    added = true;
  }
  if (!added) return;
  const end = readings[readings.length - 1].t;
  readings = readings.filter((reading) => reading.t >= end - windowMs);
  renderFigures();
  renderTable();
  renderChart();
}

function showViewers(count) {
  viewersCount.textContent = count === undefined ? '–' : String(count);
  if (count === undefined) viewersLabel.textContent = 'unknown while offline';
  else viewersLabel.textContent = count === 1 ? 'page watching: just you' : 'pages watching this feed';
}

function onSensorsMessage(data) {
  if (typeof data !== 'string') return;
  let message;
  try {
    message = JSON.parse(data);
  } catch {
    return;
  }
  if (message?.type === 'reading') addReadings([message]);
  else if (message?.type === 'history' && Array.isArray(message.readings)) {
    if (Number.isInteger(message.intervalMs) && message.intervalMs > 0) intervalMs = message.intervalMs;
    addReadings(message.readings);
  } else if (message?.type === 'viewers' && Number.isInteger(message.count)) showViewers(message.count);
}

const fixed = (value) => value.toFixed(2);

function extremes() {
  let low = readings[0];
  let high = readings[0];
  let sum = 0;
  for (const reading of readings) {
    if (reading.value < low.value) low = reading;
    if (reading.value > high.value) high = reading;
    sum += reading.value;
  }
  return { low, high, average: sum / readings.length };
}

function renderFigures() {
  const latest = readings[readings.length - 1];
  const previous = readings[readings.length - 2];
  sensorsValue.textContent = fixed(latest.value);
  sensorsValue.dataset.at = latest.at;
  if (previous === undefined) {
    sensorsTrend.textContent = `at ${formatTime(latest.t)}`;
    sensorsTrend.dataset.trend = 'flat';
  } else {
    const change = latest.value - previous.value;
    const arrow = change > 0.004 ? '▲' : change < -0.004 ? '▼' : '■';
    sensorsTrend.textContent = `${arrow} ${Math.abs(change).toFixed(2)} · at ${formatTime(latest.t)}`;
    sensorsTrend.dataset.trend = change > 0.004 ? 'up' : change < -0.004 ? 'down' : 'flat';
  }
  const { low, high, average } = extremes();
  sensorsMin.textContent = fixed(low.value);
  sensorsMinAt.textContent = `at ${formatTime(low.t)}`;
  sensorsMax.textContent = fixed(high.value);
  sensorsMaxAt.textContent = `at ${formatTime(high.t)}`;
  sensorsAvg.textContent = `${fixed(average)} °C`;
  sensorsCount.textContent = String(readings.length);
}

function renderTable() {
  const rows = [];
  const newest = readings.slice(-tableRows - 1);
  for (let i = newest.length - 1; i >= 0 && rows.length < tableRows; i--) {
    const reading = newest[i];
    const before = newest[i - 1];
    const row = document.createElement('tr');
    row.dataset.at = reading.at;
    row.dataset.value = fixed(reading.value);
    const time = document.createElement('td');
    time.textContent = formatTime(reading.t);
    const value = document.createElement('td');
    value.className = 'num';
    value.textContent = fixed(reading.value);
    const change = document.createElement('td');
    change.className = 'num delta';
    if (before !== undefined) {
      const delta = reading.value - before.value;
      change.textContent = `${delta >= 0 ? '+' : '−'}${Math.abs(delta).toFixed(2)}`;
      change.dataset.trend = delta > 0.004 ? 'up' : delta < -0.004 ? 'down' : 'flat';
    }
    row.append(time, value, change);
    rows.push(row);
  }
  readingsBody.replaceChildren(...rows);
}

function svg(name, attributes = {}, text = undefined) {
  const element = document.createElementNS(svgNs, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

/** Round steps for the value axis: 4 to 6 gridlines over [low, high]. */
function valueTicks(low, high) {
  const steps = [0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10];
  const step = steps.find((candidate) => (high - low) / candidate <= 5) ?? 10;
  const first = Math.floor(low / step) * step;
  const last = Math.ceil(high / step) * step;
  const ticks = [];
  for (let value = first; value <= last + step / 2; value += step) ticks.push(Number(value.toFixed(4)));
  return { ticks, low: first, high: last, decimals: (String(step).split('.')[1] ?? '').length };
}

function renderChart() {
  const width = Math.max(320, Math.round(chart.clientWidth));
  const height = Math.max(200, Math.round(chart.clientHeight));
  const margin = { top: 14, right: 18, bottom: 30, left: 48 };
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  chart.setAttribute('viewBox', `0 0 ${width} ${height}`);
  const parts = [];
  if (readings.length === 0) {
    parts.push(svg('text', { x: width / 2, y: height / 2, class: 'chart-empty', 'text-anchor': 'middle' }, 'waiting for readings…'));
    chart.replaceChildren(...parts);
    return;
  }

  const end = readings[readings.length - 1].t;
  const start = end - windowMs;
  const { low, high } = extremes();
  const middle = (low.value + high.value) / 2;
  const half = Math.max(0.5, (high.value - low.value) / 2 + 0.1);
  const axis = valueTicks(middle - half, middle + half);
  const x = (t) => margin.left + ((t - start) / windowMs) * plotWidth;
  const y = (value) => margin.top + (1 - (value - axis.low) / (axis.high - axis.low)) * plotHeight;

  const defs = svg('defs');
  const gradient = svg('linearGradient', { id: 'chart-fill', x1: 0, y1: 0, x2: 0, y2: 1 });
  gradient.append(svg('stop', { offset: '0%', class: 'fill-top' }), svg('stop', { offset: '100%', class: 'fill-bottom' }));
  defs.append(gradient);
  parts.push(defs);

  // Value gridlines and labels.
  for (const tick of axis.ticks) {
    parts.push(svg('line', { x1: margin.left, x2: width - margin.right, y1: y(tick), y2: y(tick), class: 'grid' }));
    parts.push(svg('text', { x: margin.left - 8, y: y(tick) + 4, class: 'axis-label', 'text-anchor': 'end' }, tick.toFixed(axis.decimals)));
  }
  parts.push(svg('text', { x: 12, y: margin.top + plotHeight / 2, class: 'axis-title', 'text-anchor': 'middle',
    transform: `rotate(-90 12 ${margin.top + plotHeight / 2})` }, '°C'));
  // Time labels every 30 s on the clock.
  const labelEveryMs = 30_000;
  for (let t = Math.ceil(start / labelEveryMs) * labelEveryMs; t <= end; t += labelEveryMs) {
    parts.push(svg('line', { x1: x(t), x2: x(t), y1: margin.top + plotHeight, y2: margin.top + plotHeight + 5, class: 'tick' }));
    parts.push(svg('text', { x: x(t), y: height - 8, class: 'axis-label', 'text-anchor': 'middle' }, formatTime(t)));
  }
  parts.push(svg('line', { x1: margin.left, x2: width - margin.right, y1: margin.top + plotHeight, y2: margin.top + plotHeight, class: 'baseline' }));

  // The series, split where readings are missing (the server was away), each piece drawn as area and line.
  const gapMs = intervalMs * 2.5;
  const pieces = [];
  for (const reading of readings) {
    const piece = pieces[pieces.length - 1];
    if (piece !== undefined && reading.t - piece[piece.length - 1].t <= gapMs) piece.push(reading);
    else pieces.push([reading]);
  }
  const bottom = margin.top + plotHeight;
  for (const piece of pieces) {
    const line = piece.map((r, i) => `${i === 0 ? 'M' : 'L'}${x(r.t).toFixed(1)},${y(r.value).toFixed(1)}`).join('');
    const area = `${line}L${x(piece[piece.length - 1].t).toFixed(1)},${bottom}L${x(piece[0].t).toFixed(1)},${bottom}Z`;
    parts.push(svg('path', { d: area, class: 'area', fill: 'url(#chart-fill)' }));
    parts.push(svg('path', { d: line, class: 'line' }));
  }

  // Minimum and maximum of the window, marked where they happened.
  for (const [reading, kind] of [[high, 'max'], [low, 'min']]) {
    if (readings.length < 2) break;
    const cx = x(reading.t);
    const cy = y(reading.value);
    parts.push(svg('circle', { cx, cy, r: 3.5, class: `extreme ${kind}` }));
    const anchor = cx > margin.left + plotWidth * 0.8 ? 'end' : cx < margin.left + plotWidth * 0.2 ? 'start' : 'middle';
    parts.push(svg('text', { x: cx, y: kind === 'max' ? cy - 9 : cy + 17, class: `extreme-label ${kind}`, 'text-anchor': anchor },
      `${kind} ${fixed(reading.value)}`));
  }
  const latest = readings[readings.length - 1];
  parts.push(svg('circle', { cx: x(latest.t), cy: y(latest.value), r: 8, class: 'now-halo' }));
  parts.push(svg('circle', { cx: x(latest.t), cy: y(latest.value), r: 4, class: 'now' }));

  chart.replaceChildren(...parts);
  chart.setAttribute('aria-label',
    `Temperature over the last 2 minutes: now ${fixed(latest.value)} °C, minimum ${fixed(low.value)}, maximum ${fixed(high.value)}`);
}

new ResizeObserver(() => renderChart()).observe(chart);

setUpPanel({
  path: '/sensors',
  statusPill: document.getElementById('sensors-status'),
  toggle: document.getElementById('sensors-toggle'),
  controls: [],
  onMessage: onSensorsMessage,
  onStateChange(state) {
    // A count we cannot update is not shown; the chart keeps what it has and greys out until readings resume.
    if (state !== 'open') showViewers(undefined);
    document.body.dataset.feed = state;
  },
});

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
    appendLog(chatLog, [['tag', `binary ${bytes.length} B`], ['mono', preview]]);
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
    appendLog(chatLog, [['tag', 'text'], ['', data]]);
    return;
  }
  appendLog(chatLog, [['who', message.name], ['text', message.text]], message.from === tabId ? 'mine' : '');
}

const chat = setUpPanel({
  path: '/chat',
  statusPill: document.getElementById('chat-status'),
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
  if (expected === undefined) verdict = ['tag', 'not sent from here'];
  else if (!matches) verdict = ['bad', '✗ differs'];
  if (isText) appendLog(echoLog, [['tag in', '← text'], ['text', data === '' ? '(empty)' : data], verdict], 'in');
  else appendLog(echoLog, [['tag in', `← binary ${data.byteLength} B`], ['mono', toHex(data)], verdict], 'in');
}

const echo = setUpPanel({
  path: '/echo',
  statusPill: document.getElementById('echo-status'),
  toggle: document.getElementById('echo-toggle'),
  controls: [echoForm.querySelector('button[type="submit"]'), echoBinary],
  onMessage: showEcho,
  // Anything in flight when the connection dropped will never come back.
  onStateChange: (state) => { if (state !== 'open') awaitingEcho = []; },
});

echoForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = echoText.value;
  if (!echo.send(text)) return;
  awaitingEcho.push(text);
  appendLog(echoLog, [['tag out', '→ text'], ['text', text === '' ? '(empty)' : text]], 'out');
  echoText.value = '';
  echoText.focus();
});

echoBinary.addEventListener('click', () => {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  if (!echo.send(bytes.buffer)) return;
  awaitingEcho.push(bytes.buffer);
  appendLog(echoLog, [['tag out', '→ binary 16 B'], ['mono', toHex(bytes.buffer)]], 'out');
});
