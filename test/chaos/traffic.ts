// Customers and an operator as the chaos suite plays them: orders posted at a steady rate, some
// with a card the gateway declines, some cancelled soon after, some large enough to wait for an
// approval. Each client retries as the API asks (network errors, 5xx, 429: same Idempotency-Key),
// so an order is "placed" once the ingress answered 202, whatever broke on the way.
import { randomUUID } from 'node:crypto';

export type OrderKind = 'plain' | 'declined' | 'cancelled' | 'approval';

/** What a client learnt of its cancel or approval: taken (202), refused (409), or not known for sure. */
export type DecisionOutcome = 'accepted' | 'refused' | 'unknown';

export interface PlacedOrder {
  orderId: string;
  kind: OrderKind;
  total: number;
  quantity: number;
  /** For kind 'cancelled' and 'approval'. */
  decision?: DecisionOutcome;
}

export interface Traffic {
  /** Orders the ingress accepted (202). */
  placed: PlacedOrder[];
  /** Answers the clients did not expect (a valid order refused with a 4xx, a request given up). */
  errors: string[];
  /** Places `count` orders of one kind at once. */
  burst(count: number, kind: OrderKind): void;
  /** Stops placing orders and waits for every client to finish (its retries and its decision). */
  stop(): Promise<void>;
}

export const UNIT_PRICE = 1_000;
/** Above the stack's APPROVAL_THRESHOLD (5,000), below it for every other kind (at most 3 units). */
const APPROVAL_QUANTITY = 6;
/**
 * A client gives up (and reports it) after this long: the suite's timeout leaves room for it. A
 * Temporal cluster on a loaded 2-core machine took about 100 s after a 20 s database cut to
 * dispatch the first workflow task of sagas started meanwhile (seen in a CI run); an operator
 * would keep trying that long.
 */
export const GIVE_UP_AFTER_MS = 180_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether the answer says "try again" (the request may or may not have had an effect). */
const retryable = (status: number) => status >= 500 || status === 429 || status === 408;

/** Waits what the answer's Retry-After asks, within [200 ms, 2 s]. */
async function backoff(response: Response | undefined): Promise<void> {
  const seconds = Number(response?.headers.get('retry-after'));
  await sleep(Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds * 1_000, 2_000) : 200 + Math.random() * 300);
}

/**
 * Starts the customers. Each client begins on one ingress of `apis` (in turn) and moves to the
 * next when one does not answer or answers 5xx, keeping its Idempotency-Key.
 */
export function startTraffic(apis: string[], sku: string, ordersPerSecond: number, random: () => number): Traffic {
  const placed: PlacedOrder[] = [];
  const errors: string[] = [];
  const clients = new Set<Promise<void>>();
  let nextIngress = 0;
  /** An ingress to talk to, and the move to the next one after a failed attempt. */
  const ingressPicker = () => {
    let at = nextIngress++ % apis.length;
    return {
      api: () => apis[at]!,
      failedWith(response: Response | undefined) {
        if (!response || response.status >= 500) at = (at + 1) % apis.length;
      },
    };
  };
  const track = (client: Promise<void>) => {
    clients.add(client);
    void client.finally(() => clients.delete(client));
  };

  const pickKind = (): OrderKind => {
    const roll = random();
    return roll < 0.7 ? 'plain' : roll < 0.8 ? 'declined' : roll < 0.9 ? 'cancelled' : 'approval';
  };

  async function place(kind: OrderKind): Promise<void> {
    const quantity = kind === 'approval' ? APPROVAL_QUANTITY : 1 + Math.floor(random() * 3);
    const body = JSON.stringify({
      customerId: 'chaos-customer',
      items: [{ sku, quantity, unitPrice: UNIT_PRICE }],
      currency: 'EUR',
      paymentToken: kind === 'declined' ? 'tok_decline' : 'tok_visa',
    });
    const key = randomUUID();
    const ingress = ingressPicker();
    const deadline = Date.now() + GIVE_UP_AFTER_MS;
    while (Date.now() < deadline) {
      const response = await fetch(`${ingress.api()}/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body,
        signal: AbortSignal.timeout(10_000),
      }).catch(() => undefined);
      if (response?.status === 202) {
        const { orderId } = (await response.json()) as { orderId: string };
        const order: PlacedOrder = { orderId, kind, total: quantity * UNIT_PRICE, quantity };
        placed.push(order);
        if (kind === 'cancelled' || kind === 'approval') order.decision = await decide(order);
        return;
      }
      if (response && !retryable(response.status)) {
        errors.push(`POST /orders answered ${response.status}: ${await response.text()}`);
        return;
      }
      ingress.failedWith(response);
      await backoff(response);
    }
    errors.push(`POST /orders (key ${key}) not accepted within ${GIVE_UP_AFTER_MS} ms`);
  }

  /** The customer cancels, or the operator approves, a moment after placing the order. */
  async function decide(order: PlacedOrder): Promise<DecisionOutcome> {
    await sleep(100 + random() * 1_500);
    const action = order.kind === 'cancelled' ? 'cancel' : 'approve';
    const body = JSON.stringify(
      action === 'cancel' ? { reason: 'chaos: changed my mind' } : { approvedBy: 'chaos-ops' },
    );
    // An attempt that failed without an answer may still have reached the saga: a later 409 then
    // does not prove the decision was refused.
    let maybeTaken = false;
    const ingress = ingressPicker();
    const deadline = Date.now() + GIVE_UP_AFTER_MS;
    while (Date.now() < deadline) {
      const response = await fetch(`${ingress.api()}/orders/${order.orderId}/${action}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(15_000),
      }).catch(() => undefined);
      if (response?.status === 202) return 'accepted';
      if (response?.status === 409) {
        // An approval sent before the saga asks for it is refused with the status it is in: the
        // operator approves once the order waits for it.
        const { orderStatus, detail } = (await response.json()) as { orderStatus?: string; detail?: string };
        if (action === 'approve' && (orderStatus === 'RECEIVED' || orderStatus === undefined)) {
          await sleep(300);
          continue;
        }
        // An approval refused while the order waits for one is a defect, unless an earlier attempt
        // of this client was taken a moment before (the saga then says so).
        if (
          action === 'approve' &&
          orderStatus === 'AWAITING_APPROVAL' &&
          !(maybeTaken && detail?.includes('just approved'))
        )
          errors.push(`approve of ${order.orderId} refused while the order awaits approval: ${detail}`);
        return maybeTaken ? 'unknown' : 'refused';
      }
      // 404: the event waits in ORDERS for a starter; the saga is not there yet.
      if (response && response.status !== 404 && !retryable(response.status)) {
        errors.push(`POST /orders/${order.orderId}/${action} answered ${response.status}: ${await response.text()}`);
        return 'unknown';
      }
      if (!response || response.status >= 500) maybeTaken = true;
      ingress.failedWith(response);
      await backoff(response);
    }
    errors.push(`POST /orders/${order.orderId}/${action} not decided within ${GIVE_UP_AFTER_MS} ms`);
    return 'unknown';
  }

  let stopped = false;
  const pacer = (async () => {
    const intervalMs = 1_000 / ordersPerSecond;
    let next = Date.now();
    while (!stopped) {
      track(place(pickKind()));
      next += intervalMs;
      await sleep(Math.max(0, next - Date.now()));
    }
  })();

  return {
    placed,
    errors,
    burst(count, kind) {
      for (let i = 0; i < count; i += 1) track(place(kind));
    },
    async stop() {
      stopped = true;
      await pacer;
      while (clients.size > 0) await Promise.all([...clients]);
    },
  };
}
