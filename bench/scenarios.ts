// The bench's own scenarios (echo, idle, broadcast, permessage-deflate) and the settings they are built from: what
// each one runs, on which servers, with which load arguments and time limit, and the target its ratio is judged by.
import type { ServerMode, ServerName } from './servers.js';

/** The deflate scenarios' message size: at the threshold, so every message is compressed both ways. */
const DEFLATE_MESSAGE_BYTES = 1024;
/** deflate-echo: connections, and messages in flight on each. */
const DEFLATE_ECHO_CONNECTIONS = 100;
const DEFLATE_ECHO_INFLIGHT = 4;

export const SCENARIO_IDS = ['echo64', 'echo1m', 'idle', 'idle10k', 'broadcast1k', 'broadcast10k', 'deflate-echo', 'deflate-idle'] as const;
export type ScenarioId = (typeof SCENARIO_IDS)[number];

/** How a scenario's switchyard/ws ratio is judged. */
interface Target {
  /** Shown in the `targets` block. */
  description: string;
  /** 'at-least': higher is better (throughput); 'at-most': lower is better (memory). */
  direction: 'at-least' | 'at-most';
  ratio: number;
}

export interface BroadcastPlan {
  subscribers: number;
  /** Subscriber connections are spread over this many load processes (plus one publisher process). */
  loadProcesses: number;
  /** Messages the publisher keeps outstanding (its own copy coming back releases the next one): one window each. */
  inflight: number[];
  payloadBytes: number;
  /** Publisher connections (1 in the default scenarios; more is a diagnostic, see load-broadcast.ts runPublisher). */
  publishers: number;
  warmupMs: number;
  durationMs: number;
  /** Hard cap on published messages, so the run is bounded in count as well as in time. */
  maxMessages: number;
}

export interface Scenario {
  id: ScenarioId;
  kind: 'echo' | 'idle' | 'broadcast';
  /** How the servers are started (see ServerMode). */
  mode: ServerMode;
  /** The servers compared, candidates first, ws last (the tcp reference is added where `reference` says). */
  servers: ServerName[];
  /** Whether the raw TCP echo runs as a reference line (not for broadcast or permessage-deflate). */
  reference: boolean;
  title: string;
  /** echo and idle: arguments for one load.js process. */
  loadArgs: string[];
  broadcast?: BroadcastPlan;
  /** Connections open at once, for the ulimit -n check. */
  connections: number;
  timeoutMs: number;
  target: Target;
}

export interface Settings {
  warmupMs: number;
  durationMs: number;
  idleConnections: number;
  settleMs: number;
  broadcastInflight: number[];
  /** Measured time per K in a broadcast run. */
  broadcastDurationMs: number;
  broadcastPublishers: number;
  /** 0: two subscriber processes, or one per 5,000 subscribers if that is more. */
  broadcastLoadProcesses: number;
  deflateIdleConnections: number;
  /** Different JSON messages each deflate connection sends in turn (1: the same message every time). */
  deflateVariants: number;
}

export const SUBSCRIBERS_PER_LOAD_PROCESS = 5000;

/** Settling time at a new K before each broadcast window after the first. */
export const PHASE_SETTLE_MS = 500;

export function scenarios(settings: Settings): Record<ScenarioId, Scenario> {
  const timing = ['--warmup-ms', String(settings.warmupMs), '--duration-ms', String(settings.durationMs)];
  const echoTimeoutMs = settings.warmupMs + settings.durationMs + 30_000;
  const idle = (id: ScenarioId, connections: number): Scenario => ({
    id,
    kind: 'idle',
    mode: 'echo',
    servers: ['switchyard', 'ws'],
    reference: true,
    title: `${connections.toLocaleString('en-US')} idle connections (opened in batches of 200)`,
    loadArgs: ['--scenario', 'idle', '--connections', String(connections), '--batch-size', '200', '--warmup-connections', '50', '--settle-ms', String(settings.settleMs)],
    connections,
    timeoutMs: 90_000,
    target: { description: `KiB per idle connection at ${connections.toLocaleString('en-US')} connections`, direction: 'at-most', ratio: 1 },
  });
  const broadcast = (id: ScenarioId, subscribers: number): Scenario => {
    const plan: BroadcastPlan = {
      subscribers,
      loadProcesses: settings.broadcastLoadProcesses || Math.max(2, Math.ceil(subscribers / SUBSCRIBERS_PER_LOAD_PROCESS)),
      inflight: settings.broadcastInflight,
      payloadBytes: 64,
      publishers: settings.broadcastPublishers,
      warmupMs: settings.warmupMs,
      durationMs: settings.broadcastDurationMs,
      maxMessages: Math.ceil(100_000_000 / subscribers),
    };
    return {
      id,
      kind: 'broadcast',
      mode: 'broadcast',
      servers: ['switchyard', 'ws'],
      reference: false,
      title:
        `broadcast 64 B text to ${subscribers.toLocaleString('en-US')} subscribers, ` +
        `${plan.publishers === 1 ? '1 publisher' : `${plan.publishers} publisher connections (round robin)`} with K = ${plan.inflight.join(', then ')} in flight ` +
        `(${plan.loadProcesses} subscriber process${plan.loadProcesses === 1 ? '' : 'es'} + 1 publisher process)`,
      loadArgs: [],
      broadcast: plan,
      connections: subscribers + plan.publishers,
      // Opening (sequential processes, 60 s each at most) + warm-up + run + drain + stop, with room to spare.
      timeoutMs: plan.loadProcesses * 60_000 + plan.warmupMs + plan.inflight.length * (plan.durationMs + PHASE_SETTLE_MS) + 60_000,
      target: { description: `broadcast delivered msg/s to ${subscribers.toLocaleString('en-US')} subscribers`, direction: 'at-least', ratio: 2 },
    };
  };
  return {
    echo64: {
      id: 'echo64',
      kind: 'echo',
      mode: 'echo',
      servers: ['switchyard', 'ws'],
      reference: true,
      title: '64 B text echo, 100 connections x 16 in flight',
      loadArgs: ['--scenario', 'echo', '--connections', '100', '--inflight', '16', '--payload-bytes', '64', '--max-messages', '50000000', ...timing],
      connections: 100,
      timeoutMs: echoTimeoutMs,
      target: { description: '64 B echo msg/s', direction: 'at-least', ratio: 2 },
    },
    echo1m: {
      id: 'echo1m',
      kind: 'echo',
      mode: 'echo',
      servers: ['switchyard', 'ws'],
      reference: true,
      title: '1 MiB binary echo, 4 connections x 2 in flight',
      loadArgs: ['--scenario', 'echo', '--connections', '4', '--inflight', '2', '--payload-bytes', String(1 << 20), '--binary', '--max-messages', '100000', ...timing],
      connections: 4,
      timeoutMs: echoTimeoutMs,
      target: { description: '1 MiB echo msg/s', direction: 'at-least', ratio: 1.5 },
    },
    idle: idle('idle', settings.idleConnections),
    idle10k: idle('idle10k', 10_000),
    broadcast1k: broadcast('broadcast1k', 1000),
    broadcast10k: broadcast('broadcast10k', 10_000),
    'deflate-echo': {
      id: 'deflate-echo',
      kind: 'echo',
      mode: 'deflate',
      // Default switchyard (zlib level 1), switchyard at ws's level 6 (the fairness row), ws (level 6).
      servers: ['switchyard', 'switchyard-l6', 'ws'],
      reference: false,
      title:
        `permessage-deflate echo, ${DEFLATE_MESSAGE_BYTES} B JSON text compressed both ways, ${DEFLATE_ECHO_CONNECTIONS} connections x ` +
        `${DEFLATE_ECHO_INFLIGHT} in flight (${settings.deflateVariants === 1 ? 'the same message every time' : `${settings.deflateVariants} different messages in turn`})`,
      loadArgs: [
        '--scenario', 'echo', '--deflate', '--deflate-variants', String(settings.deflateVariants),
        '--connections', String(DEFLATE_ECHO_CONNECTIONS), '--inflight', String(DEFLATE_ECHO_INFLIGHT),
        '--payload-bytes', String(DEFLATE_MESSAGE_BYTES), '--max-messages', '20000000', ...timing,
      ],
      connections: DEFLATE_ECHO_CONNECTIONS,
      timeoutMs: echoTimeoutMs,
      target: { description: 'permessage-deflate echo msg/s', direction: 'at-least', ratio: 1 },
    },
    'deflate-idle': {
      id: 'deflate-idle',
      kind: 'idle',
      mode: 'deflate',
      servers: ['switchyard', 'ws'],
      reference: false,
      title:
        `${settings.deflateIdleConnections.toLocaleString('en-US')} idle permessage-deflate connections: negotiated and unused, ` +
        `then after one ${DEFLATE_MESSAGE_BYTES} B compressed message each way`,
      loadArgs: [
        '--scenario', 'idle', '--deflate', '--idle-message', '--deflate-variants', String(settings.deflateVariants),
        '--payload-bytes', String(DEFLATE_MESSAGE_BYTES), '--connections', String(settings.deflateIdleConnections),
        '--batch-size', '200', '--warmup-connections', '50', '--settle-ms', String(settings.settleMs),
      ],
      connections: settings.deflateIdleConnections,
      timeoutMs: 90_000,
      target: { description: 'KiB per idle permessage-deflate connection', direction: 'at-most', ratio: 1 },
    },
  };
}
