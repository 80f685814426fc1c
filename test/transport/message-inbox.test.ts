// MessageInbox and MessageIterator without sockets: order, waiting, the end after the last message, the
// high-water mark that pauses the host and the quarter mark that resumes it, and `return()` losing nothing.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { MessageInbox, MessageIterator, DEFAULT_INBOX_HIGH_WATER_BYTES, type InboxHost } from '../../src/transport/message-inbox.js';

/** A host that records pause() and resume() calls and its current state. */
class FakeHost implements InboxHost {
  paused = false;
  readonly calls: string[] = [];
  pause(): void { this.paused = true; this.calls.push('pause'); }
  resume(): void { this.paused = false; this.calls.push('resume'); }
}

const text = (value: string): Buffer => Buffer.from(value);

async function takeText(iterator: MessageIterator): Promise<string | undefined> {
  const result = await iterator.next();
  return result.done === true ? undefined : result.value.data.toString();
}

describe('MessageInbox', () => {
  it('yields queued messages in arrival order with their type, then waits for the next one', async () => {
    const inbox = new MessageInbox(new FakeHost());
    const iterator = new MessageIterator(inbox);
    inbox.push(text('one'), false);
    inbox.push(Buffer.from([1, 2]), true);
    assert.deepEqual(await iterator.next(), { value: { data: text('one'), isBinary: false }, done: false });
    assert.deepEqual(await iterator.next(), { value: { data: Buffer.from([1, 2]), isBinary: true }, done: false });
    let settled = false;
    const pending = iterator.next().then((result) => { settled = true; return result; });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(settled, false, 'next() waits while the inbox is empty');
    inbox.push(text('three'), false);
    assert.equal((await pending).value?.data.toString(), 'three');
    assert.equal(inbox.queuedMessages, 0, 'a message handed to a waiting next() is not queued');
  });

  it('finishes iterations after every message queued before end(), and at once for a waiting next()', async () => {
    const inbox = new MessageInbox(new FakeHost());
    const waiting = new MessageIterator(inbox).next();
    inbox.end();
    assert.deepEqual(await waiting, { value: undefined, done: true });

    const later = new MessageInbox(new FakeHost());
    later.push(text('a'), false);
    later.push(text('b'), false);
    later.end();
    later.push(text('after the end'), false);
    const seen: string[] = [];
    for await (const { data } of new MessageIterator(later)) seen.push(data.toString());
    assert.deepEqual(seen, ['a', 'b']);
  });

  it('pauses its host above the high-water mark and resumes it once a quarter of it remains', async () => {
    const host = new FakeHost();
    const inbox = new MessageInbox(host, { inboxHighWaterBytes: 4096 });
    const iterator = new MessageIterator(inbox);
    // 896 payload bytes + 128 per message: each counts 1024.
    for (let i = 0; i < 4; i++) inbox.push(Buffer.alloc(896, i), true);
    assert.equal(host.paused, false, `${inbox.queuedBytes} bytes queued: not above 4096 yet`);
    inbox.push(Buffer.alloc(896, 4), true);
    assert.deepEqual(host.calls, ['pause']);
    inbox.push(Buffer.alloc(896, 5), true);
    assert.deepEqual(host.calls, ['pause'], 'paused once');
    for (let taken = 0; taken < 5; taken++) {
      assert.equal(host.paused, true, `still paused with ${inbox.queuedBytes} bytes queued`);
      await iterator.next();
    }
    assert.equal(inbox.queuedBytes, 1024);
    assert.equal(host.paused, false, 'resumed once at most a quarter of the mark remains');
    assert.deepEqual(host.calls, ['pause', 'resume']);
  });

  it('counts 128 bytes per message, so a flood of empty messages pauses too', () => {
    const host = new FakeHost();
    const inbox = new MessageInbox(host, { inboxHighWaterBytes: 128 * 100 });
    for (let i = 0; i < 100; i++) inbox.push(Buffer.alloc(0), true);
    assert.equal(host.paused, false);
    inbox.push(Buffer.alloc(0), true);
    assert.equal(host.paused, true);
  });

  it('defaults to a 1 MiB high-water mark and refuses one that is not a positive integer', () => {
    assert.equal(DEFAULT_INBOX_HIGH_WATER_BYTES, 1 << 20);
    for (const bad of [0, -1, 1.5, Number.NaN]) assert.throws(() => new MessageInbox(new FakeHost(), { inboxHighWaterBytes: bad }), RangeError);
  });

  it('return() ends one iteration without taking a message: the next iteration gets it', async () => {
    const inbox = new MessageInbox(new FakeHost());
    const first = new MessageIterator(inbox);
    const pending = first.next();
    assert.deepEqual(await first.return(), { value: undefined, done: true });
    assert.deepEqual(await pending, { value: undefined, done: true }, 'a next() waiting when return() came finishes empty');
    assert.deepEqual(await first.next(), { value: undefined, done: true });
    inbox.push(text('kept'), false);
    assert.equal(await takeText(new MessageIterator(inbox)), 'kept');
  });

  it('hands messages to waiting iterations first come, first served', async () => {
    const inbox = new MessageInbox(new FakeHost());
    const a = takeText(new MessageIterator(inbox));
    const b = takeText(new MessageIterator(inbox));
    inbox.push(text('first'), false);
    inbox.push(text('second'), false);
    assert.deepEqual(await Promise.all([a, b]), ['first', 'second']);
  });
});
