// The byte and age limits of the contract streams, against a real nats-server of this file's own
// (the tests delete and refill the streams): each stream gets the limits the configuration gives
// it, streams made by earlier versions without a byte limit are brought to them at start, each
// stream does at its limit what lib/nats.ts says (AUDIT and ORDERS_DLQ refuse new messages and keep
// every one they hold, NOTIFICATIONS drops its oldest), and limits the JetStream store cannot hold
// stop the start with a message naming the variables.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, inject } from 'vitest';
import {
  DiscardPolicy,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import { loadConfig } from '../../lib/config.js';
import { connectNats, ensureStreams, readStreamFill, STREAMS, StreamLimitsDoNotFitError } from '../../lib/nats.js';
import { freePort, startNats, stopProcess } from '../../scripts/local-servers.mjs';
import { startPrivateNats, type PrivateNats } from '../support/private-nats.js';

const MIB = 1024 ** 2;
const DAY_MS = 86_400_000;

let nats: PrivateNats;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;

beforeAll(async () => {
  nats = await startPrivateNats('stream-limits');
  nc = await connectNats([nats.url], 'stream-limits-test');
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  await nc?.close();
  await nats?.close();
});

beforeEach(async () => {
  for (const { name } of Object.values(STREAMS)) await jsm.streams.delete(name).catch(() => undefined);
});

/** The NATS settings a process started with `env` uses. */
const natsSettings = (env: Record<string, string> = {}) => loadConfig(env).nats;

const configOf = async (stream: string) => (await jsm.streams.info(stream)).config;

/** Publishes `count` messages of `bytes` each to `subject`; resolves with the error of the first one refused, if any. */
async function publishMany(subject: string, count: number, bytes: number): Promise<Error | undefined> {
  for (let i = 0; i < count; i += 1) {
    try {
      await js.publish(subject, new Uint8Array(bytes), { msgID: randomUUID() });
    } catch (error) {
      return error as Error;
    }
  }
  return undefined;
}

describe('stream limits from the configuration', () => {
  it('when a process starts with the limits set, then each stream has its byte limit, age and discard policy', async () => {
    await ensureStreams(
      jsm,
      natsSettings({
        AUDIT_STREAM_MAX_BYTES: String(300 * MIB),
        AUDIT_STREAM_MAX_AGE: '180d',
        NOTIFICATIONS_STREAM_MAX_BYTES: String(20 * MIB),
        NOTIFICATIONS_STREAM_MAX_AGE: '2d',
        ORDERS_DLQ_STREAM_MAX_BYTES: String(10 * MIB),
        ORDERS_DLQ_STREAM_MAX_AGE: '14d',
      }),
    );
    expect(await configOf('AUDIT')).toMatchObject({
      max_bytes: 300 * MIB,
      max_age: nanos(180 * DAY_MS),
      discard: DiscardPolicy.New,
    });
    expect(await configOf('NOTIFICATIONS')).toMatchObject({
      max_bytes: 20 * MIB,
      max_age: nanos(2 * DAY_MS),
      discard: DiscardPolicy.Old,
    });
    expect(await configOf('ORDERS_DLQ')).toMatchObject({
      max_bytes: 10 * MIB,
      max_age: nanos(14 * DAY_MS),
      discard: DiscardPolicy.New,
    });
  });

  it('when nothing is set, then every stream still has a byte limit (the defaults)', async () => {
    await ensureStreams(jsm, natsSettings());
    for (const { name } of Object.values(STREAMS)) expect((await configOf(name)).max_bytes, name).toBeGreaterThan(0);
    expect((await configOf('AUDIT')).max_age).toBe(nanos(90 * DAY_MS));
  });

  it('when the streams were made without a byte limit (earlier versions), then a start brings them to the configured limits', async () => {
    for (const [stream, subjects] of [
      ['AUDIT', ['audit.>']],
      ['NOTIFICATIONS', ['notifications.>']],
      ['ORDERS_DLQ', ['dlq.>']],
    ] as const) {
      await jsm.streams.add({
        name: stream,
        subjects: [...subjects],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        discard: DiscardPolicy.Old,
        max_age: nanos(30 * DAY_MS),
      });
    }
    await js.publish('audit.orders.OrderReceived', 'kept', { msgID: 'kept-1' });
    await ensureStreams(jsm, natsSettings({ AUDIT_STREAM_MAX_BYTES: String(2 * MIB) }));
    expect(await configOf('AUDIT')).toMatchObject({ max_bytes: 2 * MIB, discard: DiscardPolicy.New });
    expect((await configOf('NOTIFICATIONS')).max_bytes).toBeGreaterThan(0);
    expect(await configOf('ORDERS_DLQ')).toMatchObject({ discard: DiscardPolicy.New });
    expect((await configOf('ORDERS_DLQ')).max_bytes).toBeGreaterThan(0);
    expect((await jsm.streams.info('AUDIT')).state.messages).toBe(1);
  });
});

describe('what each stream does at its byte limit', () => {
  it.each([
    ['AUDIT', 'AUDIT_STREAM_MAX_BYTES', 'audit.orders.OrderReceived'],
    ['ORDERS_DLQ', 'ORDERS_DLQ_STREAM_MAX_BYTES', 'dlq.orders.created'],
  ])(
    'when %s is full, then it refuses the next message and keeps every one it holds',
    async (stream, variable, subject) => {
      await ensureStreams(jsm, natsSettings({ [variable]: String(MIB) }));
      const refused = await publishMany(subject, 20, 100 * 1024);
      expect(refused?.message).toMatch(/maximum bytes exceeded/);
      const { state } = await jsm.streams.info(stream);
      expect(state.first_seq).toBe(1);
      expect(state.messages).toBe(state.last_seq);
      expect(state.bytes).toBeLessThanOrEqual(MIB);
      expect(await readStreamFill(jsm, [stream])).toEqual([{ stream, bytes: state.bytes, maxBytes: MIB }]);
    },
  );

  it('when NOTIFICATIONS is full, then it takes the new notice and drops the oldest', async () => {
    await ensureStreams(jsm, natsSettings({ NOTIFICATIONS_STREAM_MAX_BYTES: String(MIB) }));
    expect(await publishMany('notifications.confirmation', 20, 100 * 1024)).toBeUndefined();
    const { state } = await jsm.streams.info('NOTIFICATIONS');
    expect(state.last_seq).toBe(20);
    expect(state.first_seq).toBeGreaterThan(1);
    expect(state.bytes).toBeLessThanOrEqual(MIB);
  });

  it('when AUDIT already holds more than a lowered limit, then nothing it holds is removed and it takes nothing new', async () => {
    await ensureStreams(jsm, natsSettings({ AUDIT_STREAM_MAX_BYTES: String(4 * MIB) }));
    expect(await publishMany('audit.orders.OrderReceived', 20, 100 * 1024)).toBeUndefined();
    await ensureStreams(jsm, natsSettings({ AUDIT_STREAM_MAX_BYTES: String(MIB) }));
    const { state, config } = await jsm.streams.info('AUDIT');
    expect(config.max_bytes).toBe(MIB);
    expect([state.first_seq, state.messages]).toEqual([1, 20]);
    expect((await publishMany('audit.orders.OrderReceived', 1, 10))?.message).toMatch(/maximum bytes exceeded/);
  });
});

describe('limits the JetStream store cannot hold', () => {
  it('when the limits together exceed the store, then the start is refused naming the variables and the store', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'order-saga-stream-limits-small-'));
    // A store of 64 MiB: ORDERS (32 MiB) fits, AUDIT's 48 MiB more does not.
    const small = await startNats({
      binary: inject('natsBinary'),
      port: await freePort(),
      dataDir,
      extraConfig: [`jetstream { store_dir: ${JSON.stringify(join(dataDir, 'jetstream'))}, max_file_store: 64MB }`],
    });
    const smallNc = await connectNats([small.url], 'stream-limits-small-store');
    try {
      const settings = natsSettings({
        ORDERS_STREAM_MAX_BYTES: String(32 * MIB),
        AUDIT_STREAM_MAX_BYTES: String(48 * MIB),
        NOTIFICATIONS_STREAM_MAX_BYTES: String(MIB),
        ORDERS_DLQ_STREAM_MAX_BYTES: String(MIB),
      });
      const refusal = await ensureStreams(await jetstreamManager(smallNc), settings).catch((error: unknown) => error);
      expect(refusal).toBeInstanceOf(StreamLimitsDoNotFitError);
      expect((refusal as Error).message).toContain(`AUDIT (AUDIT_STREAM_MAX_BYTES=${48 * MIB})`);
      expect((refusal as Error).message).toContain('max_file_store');
      expect((refusal as Error).message).toContain('ORDERS_STREAM_MAX_BYTES');
    } finally {
      await smallNc.close();
      await stopProcess(small.process);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
