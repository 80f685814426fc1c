// TopicBroker: who is subscribed to what, and publish encoding one server frame for every subscriber. Frames are
// checked with the independent parser in test/_support/frames.ts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { TopicBroker, type PublishedMessage, type Subscriber } from '../../src/pubsub/broker.js';
import { Opcode, parseServerFrames, patternBytes, type ServerFrame } from '../_support/frames.js';

class RecordingSubscriber implements Subscriber {
  readonly calls: Array<readonly Buffer[]> = [];
  constructor(readonly name: string) {}
  /** Takes the plain frames, as an uncompressed WebSocket does. */
  sendPublished(message: PublishedMessage): boolean {
    this.calls.push(message.plainFrames());
    return true;
  }
  /** The single frame that the i-th call carried, parsed as a client would. */
  frame(index: number): ServerFrame {
    const frames = this.calls[index];
    assert.ok(frames !== undefined, `${this.name} received no call #${index}`);
    const { frames: parsed, rest } = parseServerFrames(Buffer.concat(frames));
    assert.equal(parsed.length, 1, 'publish queues exactly one frame');
    assert.equal(rest.length, 0, 'no bytes beyond the frame');
    return parsed[0]!;
  }
}

describe('TopicBroker subscriptions', () => {
  it('subscribes once per topic and reports duplicates', () => {
    const broker = new TopicBroker<RecordingSubscriber>();
    const a = new RecordingSubscriber('a');
    assert.equal(broker.subscribe('news', a), true);
    assert.equal(broker.subscribe('news', a), false, 'a second subscribe to the same topic is a no-op');
    assert.equal(broker.isSubscribed('news', a), true);
    assert.equal(broker.isSubscribed('sport', a), false);
    assert.equal(broker.subscriberCount('news'), 1);
    assert.equal(broker.subscriberCount('sport'), 0);
  });

  it('unsubscribes, reporting whether the subscription existed', () => {
    const broker = new TopicBroker<RecordingSubscriber>();
    const a = new RecordingSubscriber('a');
    const b = new RecordingSubscriber('b');
    broker.subscribe('news', a);
    broker.subscribe('news', b);
    assert.equal(broker.unsubscribe('news', a), true);
    assert.equal(broker.unsubscribe('news', a), false, 'already unsubscribed');
    assert.equal(broker.unsubscribe('never', a), false, 'unknown topic');
    assert.equal(broker.isSubscribed('news', a), false);
    assert.equal(broker.isSubscribed('news', b), true);
    assert.equal(broker.subscriberCount('news'), 1);
    assert.equal(broker.unsubscribe('news', b), true);
    assert.equal(broker.subscriberCount('news'), 0);
    assert.equal(broker.publish('news', 'nobody'), 0, 'a topic whose last subscriber left reaches no one');
  });

  it('keeps topics independent', () => {
    const broker = new TopicBroker<RecordingSubscriber>();
    const a = new RecordingSubscriber('a');
    broker.subscribe('news', a);
    broker.subscribe('sport', a);
    broker.unsubscribe('news', a);
    assert.equal(broker.isSubscribed('sport', a), true);
    assert.equal(broker.publish('sport', 'goal'), 1);
    assert.equal(broker.publish('news', 'headline'), 0);
    assert.equal(a.calls.length, 1);
  });
});

describe('TopicBroker.publish', () => {
  it('reaches every subscriber exactly once and returns the count', () => {
    const broker = new TopicBroker<RecordingSubscriber>();
    const subscribers = ['a', 'b', 'c'].map((name) => new RecordingSubscriber(name));
    for (const subscriber of subscribers) broker.subscribe('news', subscriber);
    const outsider = new RecordingSubscriber('outsider');
    broker.subscribe('other', outsider);
    assert.equal(broker.publish('news', 'hello'), 3);
    for (const subscriber of subscribers) assert.equal(subscriber.calls.length, 1, `${subscriber.name} got one call`);
    assert.equal(outsider.calls.length, 0);
    assert.equal(broker.publish('empty', 'x'), 0);
  });

  it('encodes once: every subscriber receives the identical Buffer objects', () => {
    const broker = new TopicBroker<RecordingSubscriber>();
    const subscribers = ['a', 'b', 'c'].map((name) => new RecordingSubscriber(name));
    for (const subscriber of subscribers) broker.subscribe('news', subscriber);
    broker.publish('news', patternBytes(300));
    const [first, ...others] = subscribers.map((subscriber) => subscriber.calls[0]!);
    assert.ok(first !== undefined && first.length > 0);
    for (const frames of others) {
      assert.equal(frames.length, first.length);
      frames.forEach((buffer, index) => assert.equal(buffer, first[index], `frame buffer #${index} is the same object for every subscriber`));
    }
  });

  it('sends a string as one unmasked text frame and bytes as one binary frame', () => {
    const broker = new TopicBroker<RecordingSubscriber>();
    const a = new RecordingSubscriber('a');
    broker.subscribe('t', a);
    broker.publish('t', 'héllo');
    broker.publish('t', Uint8Array.from([1, 2, 3]));
    broker.publish('t', 'as bytes', true);
    broker.publish('t', Buffer.from('as text'), false);

    const expected: Array<[number, Buffer]> = [
      [Opcode.text, Buffer.from('héllo')],
      [Opcode.binary, Buffer.from([1, 2, 3])],
      [Opcode.binary, Buffer.from('as bytes')],
      [Opcode.text, Buffer.from('as text')],
    ];
    expected.forEach(([opcode, payload], index) => {
      const frame = a.frame(index);
      assert.equal(frame.opcode, opcode, `publish #${index} opcode`);
      assert.equal(frame.fin, true);
      assert.equal(frame.masked, false, 'server frames are never masked (RFC 6455 §5.1)');
      assert.equal(frame.rsv, 0);
      assert.ok(frame.payload.equals(payload), `publish #${index} payload`);
    });
  });

  it('uses minimal 16- and 64-bit lengths for larger messages', () => {
    const broker = new TopicBroker<RecordingSubscriber>();
    const a = new RecordingSubscriber('a');
    broker.subscribe('t', a);
    const medium = patternBytes(126);
    const large = patternBytes(70_000);
    broker.publish('t', medium);
    broker.publish('t', large);
    const first = a.frame(0);
    const second = a.frame(1);
    assert.equal(first.lengthEncoding, '16');
    assert.equal(second.lengthEncoding, '64');
    assert.ok(first.minimalLength && second.minimalLength);
    assert.ok(first.payload.equals(medium));
    assert.ok(second.payload.equals(large));
  });
});
