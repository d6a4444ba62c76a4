// The one event envelope every JetStream message of this service uses (public contract).
import { randomBytes } from 'node:crypto';
import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';
import type { JetStreamClient, PubAck } from '@nats-io/jetstream';
import { activeTraceHeaders, inSpan, SpanKind } from './telemetry.js';

/** An event as stored on ORDERS, AUDIT, NOTIFICATIONS and ORDERS_DLQ. */
export interface EventEnvelope<T = unknown> {
  /** Unique and deterministic for the fact it records; also the Nats-Msg-Id, so a retry is stored once. */
  id: string;
  type: string;
  aggregate_id: string;
  data: T;
  timestamp: string;
  trace_id: string;
}

/** Thrown when bytes from a stream are not a well-formed envelope. */
export class MalformedEnvelopeError extends Error {
  constructor(readonly reason: string) {
    super(`malformed event envelope: ${reason}`);
    this.name = 'MalformedEnvelopeError';
  }
}

/** A new random W3C trace id (32 hex digits). */
export function newTraceId(): string {
  return randomBytes(16).toString('hex');
}

/** A W3C traceparent header for `traceId` with a fresh span id. */
export function traceparentFor(traceId: string): string {
  return `00-${traceId}-${randomBytes(8).toString('hex')}-01`;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Publishes an envelope with Nats-Msg-Id = envelope.id and resolves only once JetStream has
 * stored it (or recognised it as a duplicate). The publish is a producer span whose context
 * travels in the `traceparent` header; outside any trace the header still carries the
 * envelope's trace id, so consumers can always join the order's trace.
 */
export async function publishEnvelope(
  js: JetStreamClient,
  subject: string,
  envelope: EventEnvelope,
  extra?: Record<string, string>,
  /** How long to wait for JetStream's acknowledgement (default: the client's). */
  timeoutMs?: number,
): Promise<PubAck> {
  const attributes = {
    'messaging.system': 'nats',
    'messaging.operation.type': 'publish',
    'messaging.destination.name': subject,
    'messaging.message.id': envelope.id,
    'order.id': envelope.aggregate_id,
  };
  return inSpan(`publish ${subject}`, { kind: SpanKind.PRODUCER, attributes }, async (span) => {
    const headers: MsgHdrs = natsHeaders();
    const trace = activeTraceHeaders();
    headers.set('traceparent', trace.traceparent ?? traceparentFor(envelope.trace_id));
    if (trace.tracestate) headers.set('tracestate', trace.tracestate);
    for (const [key, value] of Object.entries(extra ?? {})) headers.set(key, value);
    const ack = await js.publish(subject, encoder.encode(JSON.stringify(envelope)), {
      msgID: envelope.id,
      headers,
      ...(timeoutMs !== undefined && { timeout: timeoutMs }),
    });
    span.setAttribute('messaging.nats.stream.sequence', ack.seq);
    if (ack.duplicate) span.setAttribute('messaging.nats.duplicate', true);
    return ack;
  });
}

/** Parses and checks an envelope; throws MalformedEnvelopeError saying what is wrong. */
export function decodeEnvelope(bytes: Uint8Array): EventEnvelope {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(bytes));
  } catch {
    throw new MalformedEnvelopeError('not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new MalformedEnvelopeError('not a JSON object');
  const record = value as Record<string, unknown>;
  for (const field of ['id', 'type', 'aggregate_id', 'timestamp', 'trace_id'] as const) {
    if (typeof record[field] !== 'string' || record[field] === '')
      throw new MalformedEnvelopeError(`field "${field}" must be a non-empty string`);
  }
  if (!('data' in record)) throw new MalformedEnvelopeError('field "data" is missing');
  return record as unknown as EventEnvelope;
}
