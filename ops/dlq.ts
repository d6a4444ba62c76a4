// Operator command for ORDERS_DLQ: list dead-lettered events, move one back into ORDERS, or
// delete one. Every change is shown first and done only with --yes.
//
//   npm run dlq -- list
//   npm run dlq -- replay <dlq-seq> [--yes] [--force]
//   npm run dlq -- delete <dlq-seq> [--yes]
//
// Replay is dedup-aware: it publishes with the message id "<event id>:replay:<dlq-seq>", so
// replaying the same entry twice stores it once, and it refuses when the order's saga already
// exists (the starter would only acknowledge it) or when the starter would dead-letter the event
// again (an order older than the namespace's retention: stale on every replay) unless --force.
// Each replay carries its count (header Dlq-Replays), so an event dead-lettered again after a
// replay is listed and refused with how many times it was already replayed.
import { jetstreamManager, jetstream, type JetStreamManager, type StoredMsg } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { WorkflowNotFoundError } from '@temporalio/client';
import { loadConfigOrExit } from '../lib/config.js';
import { namespaceRetentionMs } from '../lib/dependencies.js';
import { withLocalStackAddresses } from './local-stack.js';
import { decodeEnvelope } from '../lib/envelope.js';
import { connectNats, STREAMS } from '../lib/nats.js';
import { connectTemporalClient } from '../lib/temporal-client.js';
import { orderSchema } from '../lib/order-event.js';
import { orderWorkflowId } from '../workflows/contract.js';
import { DLQ_HEADERS } from '../workers/order-starter.js';

const USAGE = `usage: npm run dlq -- list
       npm run dlq -- replay <dlq-seq> [--yes] [--force]
       npm run dlq -- delete <dlq-seq> [--yes]`;

/** Header of a replayed event on ORDERS: how many times it was replayed from ORDERS_DLQ so far, this time included. */
const REPLAYS_HEADER = 'Dlq-Replays';
/** Header of a replayed event on ORDERS: the DLQ sequence it was replayed from. */
const REPLAYED_FROM_HEADER = 'Dlq-Replayed-From';

/** Raised for anything the operator must fix in the command line; printed without a stack. */
class UsageError extends Error {
  override name = 'UsageError';
}

interface DeadLetter {
  seq: number;
  message: StoredMsg;
  reason: string;
  originalSeq: string;
  orderId?: string;
  /** When the order was created (OrderCreated data.createdAt). */
  createdAt?: string;
  parseError?: string;
}

const times = (n: number) => `${n} ${n === 1 ? 'time' : 'times'}`;
const hours = (ms: number) => `${Math.round(ms / 3_600_000)} h`;

/**
 * How many times the event was already replayed: the count its copy on ORDERS (the one the starter
 * dead-lettered) carries; a copy replayed before counts were kept says only that it was replayed.
 */
async function replaysOf(jsm: JetStreamManager, entry: DeadLetter): Promise<number> {
  const originalStream = entry.message.header?.get(DLQ_HEADERS.stream) || STREAMS.orders.name;
  const seq = Number(entry.originalSeq);
  if (originalStream !== STREAMS.orders.name || !Number.isInteger(seq) || seq < 1) return 0;
  const original = await jsm.streams.getMessage(STREAMS.orders.name, { seq }).catch(() => null);
  const counted = Number(original?.header?.get(REPLAYS_HEADER) || 0);
  if (Number.isInteger(counted) && counted > 0) return counted;
  return original?.header?.get(REPLAYED_FROM_HEADER) ? 1 : 0;
}

function describe(message: StoredMsg): DeadLetter {
  const entry: DeadLetter = {
    seq: message.seq,
    message,
    reason: message.header?.get(DLQ_HEADERS.reason) ?? '(no reason header)',
    originalSeq: message.header?.get(DLQ_HEADERS.sequence) ?? '?',
  };
  try {
    const envelope = decodeEnvelope(message.data);
    const order = orderSchema.parse(envelope.data);
    entry.orderId = order.orderId;
    entry.createdAt = order.createdAt;
  } catch (error) {
    entry.parseError = error instanceof Error ? error.message.split('\n')[0] : String(error);
  }
  return entry;
}

async function load(jsm: JetStreamManager, seq: number): Promise<DeadLetter> {
  const message = await jsm.streams.getMessage(STREAMS.deadLetters.name, { seq }).catch(() => null);
  if (!message) throw new UsageError(`ORDERS_DLQ has no message with sequence ${seq}; run "npm run dlq -- list"`);
  return describe(message);
}

async function main(argv: string[]): Promise<void> {
  const [command, seqText, ...flags] = argv;
  const yes = flags.includes('--yes');
  const force = flags.includes('--force');
  if (!command || !['list', 'replay', 'delete'].includes(command)) throw new UsageError(USAGE);
  const seq = Number(seqText);
  if (command !== 'list' && (!Number.isInteger(seq) || seq < 1))
    throw new UsageError(`${command} needs the DLQ sequence number of a message\n${USAGE}`);

  const { env, note } = withLocalStackAddresses(process.env);
  if (note) console.error(note);
  const config = loadConfigOrExit(env);
  const nc = await connectNats(config.nats, 'order-saga-dlq', 5_000);
  try {
    const jsm = await jetstreamManager(nc);
    if (command === 'list') {
      const info = await jsm.streams.info(STREAMS.deadLetters.name);
      if (info.state.messages === 0) {
        console.log('ORDERS_DLQ is empty.');
        return;
      }
      console.log('DLQ-SEQ  ORIGINAL-SEQ  ORDER                                 REASON');
      for (let s = info.state.first_seq; s <= info.state.last_seq; s += 1) {
        const message = await jsm.streams.getMessage(STREAMS.deadLetters.name, { seq: s }).catch(() => null);
        if (!message) continue; // deleted
        const entry = describe(message);
        const replays = await replaysOf(jsm, entry);
        console.log(
          `${String(entry.seq).padEnd(8)} ${entry.originalSeq.padEnd(13)} ${(entry.orderId ?? '(unreadable)').padEnd(37)} ${entry.reason}` +
            (replays > 0 ? ` [replayed ${times(replays)}]` : ''),
        );
      }
      return;
    }

    const entry = await load(jsm, seq);
    if (command === 'delete') {
      console.log(
        `Will delete ORDERS_DLQ message ${seq} (original ORDERS sequence ${entry.originalSeq}, reason: ${entry.reason}).`,
      );
      if (!yes) return console.log('Dry run: nothing changed. Run again with --yes to delete it.');
      await jsm.streams.deleteMessage(STREAMS.deadLetters.name, seq);
      return console.log('Deleted.');
    }

    if (!entry.orderId) {
      throw new UsageError(
        `message ${seq} cannot be replayed: it is not a valid OrderCreated event (${entry.parseError}). ` +
          `Fix the producer that sent it; remove it with "npm run dlq -- delete ${seq} --yes".`,
      );
    }
    const workflowId = orderWorkflowId(entry.orderId);
    const replays = await replaysOf(jsm, entry);
    const again = replays > 0 ? `It was already replayed ${times(replays)} and dead-lettered again each time. ` : '';
    const { client, connection } = await connectTemporalClient(config);
    try {
      const existing = await client.workflow
        .getHandle(workflowId)
        .describe()
        .catch((error: unknown) => {
          if (error instanceof WorkflowNotFoundError) return undefined;
          throw error;
        });
      if (existing && !force) {
        console.log(`The saga ${workflowId} already exists (${existing.status.name}): replaying would change nothing.`);
        console.log(
          `Nothing done. Delete the DLQ entry with "npm run dlq -- delete ${seq} --yes", or replay anyway with --force.`,
        );
        return;
      }
      // The starter dead-letters an order older than the namespace's retention on every delivery,
      // so replaying it only moves it back here.
      const retentionMs = await namespaceRetentionMs(connection, config.temporal.namespace);
      const ageMs = Date.now() - Date.parse(entry.createdAt ?? '');
      if (ageMs > retentionMs) {
        console.log(
          `Order ${entry.orderId} was created ${hours(ageMs)} ago, older than the namespace's retention (${hours(retentionMs)}): ` +
            'the starter will dead-letter it again as stale, on every replay (an earlier saga of it may have been deleted, ' +
            `so starting one could run the order twice). ${again}`,
        );
        if (!force) {
          console.log(
            'Nothing done. Check the order by hand (the gateway ledger, reference = order id; AUDIT) and settle it with ' +
              `the customer, then delete the DLQ entry with "npm run dlq -- delete ${seq} --yes". ` +
              'Replay anyway with --force (it is only started if the workers run with a longer retention).',
          );
          return;
        }
      } else if (again) {
        console.log(`${again}Its reason: ${entry.reason}. Replaying it again helps only if that cause was fixed.`);
      }
    } finally {
      await connection.close();
    }

    const envelope = decodeEnvelope(entry.message.data);
    const subject = entry.message.header?.get(DLQ_HEADERS.subject) || 'orders.created';
    const msgID = `${envelope.id}:replay:${seq}`;
    console.log(`Will publish event ${envelope.id} (order ${entry.orderId}) to ${subject} with Nats-Msg-Id ${msgID},`);
    console.log(`then delete ORDERS_DLQ message ${seq}. The starter will start saga ${workflowId}.`);
    if (!yes) return console.log('Dry run: nothing changed. Run again with --yes to do it.');

    const headers = natsHeaders();
    headers.set(REPLAYED_FROM_HEADER, String(seq));
    headers.set(REPLAYS_HEADER, String(replays + 1));
    const traceparent = entry.message.header?.get('traceparent');
    if (traceparent) headers.set('traceparent', traceparent);
    const ack = await jetstream(nc).publish(subject, entry.message.data, { msgID, headers });
    console.log(
      ack.duplicate
        ? `Already replayed earlier (ORDERS sequence ${ack.seq}); not stored twice.`
        : `Stored in ORDERS at sequence ${ack.seq}.`,
    );
    await jsm.streams.deleteMessage(STREAMS.deadLetters.name, seq);
    console.log(`Deleted ORDERS_DLQ message ${seq}.`);
  } finally {
    await nc.close();
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof UsageError) {
    console.error(error.message);
    process.exit(2);
  }
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
