// Reading what the product published to JetStream, as tests check it.
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { decodeEnvelope, type EventEnvelope } from '../../lib/envelope.js';

/** Every envelope stored in `stream` (read with an ordered consumer), oldest first. */
export async function readStream(
  js: JetStreamClient,
  jsm: JetStreamManager,
  stream: string,
): Promise<(EventEnvelope & { subject: string; headers: Record<string, string> })[]> {
  const info = await jsm.streams.info(stream);
  if (info.state.messages === 0) return [];
  const consumer = await js.consumers.get(stream);
  const messages = await consumer.consume();
  const events: (EventEnvelope & { subject: string; headers: Record<string, string> })[] = [];
  for await (const message of messages) {
    const headers: Record<string, string> = {};
    for (const key of message.headers?.keys() ?? []) headers[key] = message.headers!.get(key);
    events.push({ ...decodeEnvelope(message.data), subject: message.subject, headers });
    if (message.info.pending === 0) break;
  }
  await messages.close();
  return events;
}

/** The audit events of one order, oldest first. */
export async function auditEventsOf(nats: { js: JetStreamClient; jsm: JetStreamManager }, orderId: string) {
  return (await readStream(nats.js, nats.jsm, 'AUDIT')).filter((event) => event.aggregate_id === orderId);
}
