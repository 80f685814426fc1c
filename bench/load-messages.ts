// The messages an echo or idle run sends (plain, or compressed JSON text with permessage-deflate) and the checks on
// their replies, including the one-at-a-time echo check every connection passes before anything is measured.
import {
  DEFLATE_OFFER,
  FIXED_MASK,
  OPCODE,
  FrameCounter,
  ReplyInflater,
  buildMaskedFrame,
  type OpenedSocket,
  compressMessage,
  decodeFrame,
  parseDeflateAnswer,
  sensorJson,
  type DecodedFrame,
} from './frames.js';

/**
 * What an echo or idle run sends and how it checks replies: plain frames compared byte for byte, or (--deflate)
 * compressed frames built once, in a handshake that offered permessage-deflate, with replies that must be
 * compressed (RSV1) and inflate back to the message sent.
 */
export interface MessagePlan {
  opcode: number;
  /** The messages, uncompressed; a connection sends them in turn (one message unless --deflate-variants). */
  messages: Buffer[];
  /** The masked frame each message is sent as (compressed with --deflate), built once. */
  frames: Buffer[];
  /** The Sec-WebSocket-Extensions offer, if any. */
  offer: string | undefined;
  /** Counts replies during a run from their headers. */
  counter(): FrameCounter;
  /** Checks a connection's handshake answer; returns the check for that connection's replies, in order. */
  accept(opened: OpenedSocket): ReplyCheck;
}

/** Checks one reply to messages[index]; returns a problem description, or undefined when it is right. */
export type ReplyCheck = (reply: DecodedFrame, index: number) => string | undefined;

export function messagePlan(payloadBytes: number, binary: boolean, deflate: boolean, variants = 1): MessagePlan {
  if (deflate) {
    // Realistic JSON text, each message compressed once from a fresh context: valid for every message on every
    // connection because we offered (and require the server to confirm) client_no_context_takeover.
    const messages = Array.from({ length: variants }, (_, variant) => sensorJson(payloadBytes, variant));
    return {
      opcode: OPCODE.text,
      messages,
      frames: messages.map((message) => buildMaskedFrame(compressMessage(message), OPCODE.text, FIXED_MASK, true)),
      offer: DEFLATE_OFFER,
      counter: () => new FrameCounter(OPCODE.text, 'any', true),
      accept: (opened) => {
        const answer = parseDeflateAnswer(opened.head);
        if (typeof answer === 'string') throw new Error(`permessage-deflate negotiation: ${answer}`);
        const inflater = new ReplyInflater(answer);
        return (reply, index) => {
          const message = messages[index]!;
          if (!reply.fin || reply.opcode !== OPCODE.text || !reply.rsv1) {
            return `expected a compressed (RSV1) FIN text frame, got fin=${reply.fin} rsv1=${reply.rsv1} opcode=${reply.opcode}`;
          }
          let inflated: Buffer;
          try {
            inflated = inflater.inflate(reply.payload);
          } catch (error) {
            return `the reply does not inflate (${answer.serverNoContextTakeover ? 'no ' : ''}context takeover): ${(error as Error).message}`;
          }
          return inflated.equals(message) ? undefined : `the reply inflates to ${inflated.length} bytes that differ from the ${message.length} sent`;
        };
      },
    };
  }
  const opcode = binary ? OPCODE.binary : OPCODE.text;
  // Text payloads are ASCII so they are valid UTF-8; binary payloads are arbitrary bytes.
  const message = Buffer.alloc(payloadBytes);
  for (let i = 0; i < message.length; i++) message[i] = binary ? (i * 31 + 7) & 0xff : 0x61 + (i % 26);
  return {
    opcode,
    messages: [message],
    frames: [buildMaskedFrame(message, opcode)],
    offer: undefined,
    counter: () => new FrameCounter(opcode, payloadBytes),
    accept: () => (reply) => {
      if (!reply.fin || reply.opcode !== opcode) return `expected a FIN frame with opcode ${opcode}, got fin=${reply.fin} opcode=${reply.opcode}`;
      return reply.payload.equals(message) ? undefined : `payload differs (${reply.payload.length} bytes back, ${message.length} sent)`;
    },
  };
}

/**
 * Sends plan.frames[first] and checks the reply (`check`: byte for byte, or inflated), then the next message,
 * `times` messages in all, one at a time, so a server that answers fast but wrong cannot score. Resolves with the
 * socket paused again and any bytes after the last reply.
 */
export function verifyEcho(opened: OpenedSocket, plan: MessagePlan, check: ReplyCheck, first: number, times = 1): Promise<OpenedSocket> {
  const { socket } = opened;
  let left = times;
  let index = first % plan.frames.length;
  return new Promise((resolve, reject) => {
    let received = opened.leftover;
    const cleanUp = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    const fail = (message: string): void => {
      cleanUp();
      reject(new Error(`echo check failed: ${message}`));
    };
    const onError = (error: Error): void => fail(error.message);
    const onClose = (): void => fail('connection closed before the reply');
    const timer = setTimeout(() => fail('no reply within 10 s'), 10_000);
    const checkReceived = (): void => {
      const decoded = decodeFrame(received);
      if (decoded === undefined) return;
      const problem = check(decoded, index);
      if (problem !== undefined) return fail(problem);
      received = received.subarray(decoded.frameBytes);
      if (--left > 0) {
        index = (index + 1) % plan.frames.length;
        socket.write(plan.frames[index]!);
        return checkReceived();
      }
      cleanUp();
      socket.pause();
      resolve({ ...opened, socket, leftover: received });
    };
    function onData(chunk: Buffer): void {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      checkReceived();
    }
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.resume();
    socket.write(plan.frames[index]!);
    checkReceived();
  });
}

/** accept() on every connection; on a bad answer every socket is destroyed and the run fails. */
export function acceptAll(plan: MessagePlan, opened: OpenedSocket[]): ReplyCheck[] {
  try {
    return opened.map((socket) => plan.accept(socket));
  } catch (error) {
    for (const { socket } of opened) socket.destroy();
    throw error;
  }
}
