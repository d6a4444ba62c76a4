// `npm run event-contracts`: writes docs/events/ from lib/event-schemas.ts: one JSON Schema
// (draft 2020-12) per event and an AsyncAPI 3.0 document naming the streams, subjects, headers
// and the id scheme. A test fails when the files differ from what this would write.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { stringify } from 'yaml';
import { DEAD_LETTER_HEADERS, EVENT_CONTRACTS, type EventContract } from '../lib/event-schemas.js';

export const EVENTS_DIR = fileURLToPath(new URL('../docs/events/', import.meta.url));
const SCHEMA_BASE = 'https://order-saga.example/events/';

const schemaFile = (contract: EventContract) => `${contract.name}.schema.json`;

function jsonSchema(contract: EventContract): Record<string, unknown> {
  return {
    $id: `${SCHEMA_BASE}${schemaFile(contract)}`,
    title: contract.name,
    ...z.toJSONSchema(contract.schema, { target: 'draft-2020-12', unrepresentable: 'any' }),
  };
}

const natsHeaders = {
  type: 'object',
  properties: {
    'Nats-Msg-Id': { type: 'string', description: 'the envelope id: JetStream stores a repeated publish once' },
    traceparent: { type: 'string', description: 'W3C trace context continuing the order’s trace' },
  },
  required: ['Nats-Msg-Id'],
};

function asyncApi(): Record<string, unknown> {
  const channels: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  const messages: Record<string, unknown> = {};
  for (const contract of EVENT_CONTRACTS) {
    const parameter = /\{(\w+)\}/.exec(contract.subject)?.[1];
    const channelName = `${contract.stream}.${contract.name}`;
    channels[channelName] = {
      address: contract.subject,
      description: `Stream ${contract.stream}. ${contract.summary}`,
      ...(parameter && {
        parameters: {
          [parameter]: {
            enum: parameter === 'kind' ? contract.types.map(kindOf) : [...contract.types],
            description: parameter === 'kind' ? 'the notice kind' : 'the event type',
          },
        },
      }),
      messages: { [contract.name]: { $ref: `#/components/messages/${contract.name}` } },
    };
    operations[`receive${contract.name}`] = {
      action: 'receive',
      channel: { $ref: `#/channels/${channelName}` },
      summary: `Consume ${contract.name} events from ${contract.stream}.`,
    };
    messages[contract.name] = {
      name: contract.name,
      title: contract.name,
      summary: contract.summary,
      contentType: 'application/json',
      headers: { $ref: '#/components/schemas/NatsHeaders' },
      payload: { $ref: `./${schemaFile(contract)}` },
    };
  }
  channels['ORDERS_DLQ.DeadLetter'] = {
    address: 'dlq.orders.created',
    description:
      'Stream ORDERS_DLQ. An event from ORDERS that could not start a saga, copied as it was (usually an ' +
      'OrderCreated; a poison message is whatever was sent), with why in headers. `npm run dlq` lists, replays and deletes them.',
    messages: { DeadLetter: { $ref: '#/components/messages/DeadLetter' } },
  };
  operations.receiveDeadLetter = {
    action: 'receive',
    channel: { $ref: '#/channels/ORDERS_DLQ.DeadLetter' },
    summary: 'Inspect dead-lettered events.',
  };
  messages.DeadLetter = {
    name: 'DeadLetter',
    title: 'DeadLetter',
    summary: 'The original ORDERS message and why it could not start a saga.',
    headers: { $ref: '#/components/schemas/DeadLetterHeaders' },
    payload: { description: 'the original message body, byte for byte (an OrderCreated envelope when well-formed)' },
  };
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'Order saga events',
      version: '0.1.0',
      description: [
        'Events the order saga service publishes to NATS JetStream. Every event is a JSON envelope',
        '{id, type, aggregate_id, data, timestamp, trace_id}; `id` is also the Nats-Msg-Id header, so a',
        'repeated publish is stored once, and it is deterministic for the fact it records: order-created:<orderId>',
        'for OrderCreated, <workflowId>:<runId>:<sequence> for a saga’s audit events (unique across resets),',
        '<orderId>:notification:<kind> for notices, stock:<sku>:<uuid> for stock changes, dlq:ORDERS:<sequence> for',
        'dead letters. Streams keep events by',
        'age (ORDERS 7 days, AUDIT 90 days, NOTIFICATIONS and ORDERS_DLQ 30 days); consume them with your own',
        'durable consumer.',
      ].join(' '),
    },
    defaultContentType: 'application/json',
    servers: {
      production: {
        host: 'nats.nats.svc:4222',
        protocol: 'nats',
        description: 'NATS with JetStream (TLS and credentials as configured)',
      },
    },
    channels,
    operations,
    components: {
      messages,
      schemas: {
        NatsHeaders: natsHeaders,
        DeadLetterHeaders: {
          type: 'object',
          properties: Object.fromEntries(
            Object.entries(DEAD_LETTER_HEADERS).map(([name, description]) => [name, { type: 'string', description }]),
          ),
          required: Object.keys(DEAD_LETTER_HEADERS),
        },
      },
    },
  };
}

function kindOf(type: string): string {
  return type
    .replace(/^Customer/, '')
    .replace(/Notice$/, '')
    .toLowerCase();
}

/** Every file of docs/events/ by name, as this generator writes it. */
export function renderEventContracts(): Map<string, string> {
  const files = new Map<string, string>();
  for (const contract of EVENT_CONTRACTS)
    files.set(schemaFile(contract), `${JSON.stringify(jsonSchema(contract), null, 2)}\n`);
  files.set(
    'asyncapi.yaml',
    `# Generated by npm run event-contracts from lib/event-schemas.ts; do not edit.\n${stringify(asyncApi())}`,
  );
  return files;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  mkdirSync(EVENTS_DIR, { recursive: true });
  for (const [name, content] of renderEventContracts()) writeFileSync(join(EVENTS_DIR, name), content);
  console.log(`wrote ${renderEventContracts().size} files to ${EVENTS_DIR}`);
}
