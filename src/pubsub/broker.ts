// Topics in one process: who is subscribed to what, and publishing one message to every subscriber with its
// frames encoded once (the same bytes are queued on each connection, as uWebSockets does).
import { PublishedMessage } from './published-message.js';

export { PublishedMessage } from './published-message.js';

export interface Subscriber {
  /** Queues a published message; returns false under backpressure or when closing. */
  sendPublished(message: PublishedMessage, topic: string): boolean;
}

export class TopicBroker<S extends Subscriber = Subscriber> {
  readonly #subscribers = new Map<string, Set<S>>();

  subscribe(topic: string, subscriber: S): boolean {
    let set = this.#subscribers.get(topic);
    if (set === undefined) this.#subscribers.set(topic, (set = new Set()));
    if (set.has(subscriber)) return false;
    set.add(subscriber);
    return true;
  }

  unsubscribe(topic: string, subscriber: S): boolean {
    const set = this.#subscribers.get(topic);
    if (set === undefined || !set.delete(subscriber)) return false;
    if (set.size === 0) this.#subscribers.delete(topic);
    return true;
  }

  isSubscribed(topic: string, subscriber: S): boolean {
    return this.#subscribers.get(topic)?.has(subscriber) ?? false;
  }

  subscriberCount(topic: string): number {
    return this.#subscribers.get(topic)?.size ?? 0;
  }

  /** Sends `data` to every subscriber of `topic`; returns how many subscribers it was queued for. */
  publish(topic: string, data: string | Uint8Array, isBinary: boolean = typeof data !== 'string'): number {
    const set = this.#subscribers.get(topic);
    if (set === undefined || set.size === 0) return 0;
    const message = new PublishedMessage(data, isBinary);
    let delivered = 0;
    for (const subscriber of set) {
      subscriber.sendPublished(message, topic);
      delivered++;
    }
    return delivered;
  }
}
