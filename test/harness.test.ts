// When the harness has started its servers, then they are real, ours, and usable.
import { describe, expect, it, inject } from 'vitest';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connectNats } from '../lib/nats.js';
import { connectClient } from './support/temporal.js';

describe('test harness', () => {
  it('starts a Temporal dev server with the contract search attributes registered', async () => {
    const { client, close } = await connectClient();
    try {
      const { customAttributes } = await client.connection.operatorService.listSearchAttributes({
        namespace: 'default',
      });
      expect(customAttributes).toMatchObject({ OrderStatus: 2, CustomerId: 2, OrderTotal: 4, OrderUpdatedAt: 6 }); // Keyword = 2, Double = 4, Datetime = 6
      expect(inject('temporalAddress')).not.toBe('127.0.0.1:7233'); // never the machine's default port
    } finally {
      await close();
    }
  });

  it('starts a nats-server with JetStream that stores a repeated message id once', async () => {
    const nc = await connectNats([inject('natsUrl')], 'harness-test');
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: 'HARNESS_DEDUP', subjects: ['harness.dedup'] });
      const js = jetstream(nc);
      const first = await js.publish('harness.dedup', 'one', { msgID: 'same-id' });
      const second = await js.publish('harness.dedup', 'one again', { msgID: 'same-id' });
      expect(first.duplicate).toBe(false);
      expect(second.duplicate).toBe(true);
      expect((await jsm.streams.info('HARNESS_DEDUP')).state.messages).toBe(1);
      expect(inject('natsUrl')).not.toBe('nats://127.0.0.1:4222');
    } finally {
      await nc.drain();
    }
  });
});
