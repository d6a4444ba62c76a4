// Payment gateway sandbox: the stand-in for an external payment provider, for the local
// stack and the tests. It keeps a provider's semantics (see README.md beside this file):
// idempotency keys (a key still being processed answers 409, as real providers do), declines
// by test token, charges that land after the client gave up, look-ups by key or merchant
// reference, refunds by merchant reference that close the reference when nothing was charged,
// a ledger, and faults injected through an admin endpoint.
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express, { type Request, type Response } from 'express';

export interface Charge {
  id: string;
  reference: string;
  amount: number;
  currency: string;
  status: 'succeeded';
  refunded: boolean;
  createdAt: string;
}

export interface Refund {
  id: string;
  chargeId: string;
  reference: string;
  amount: number;
  status: 'succeeded';
  createdAt: string;
}

/** Faults applied to /v1 calls; set with POST /admin/faults, cleared with POST /admin/reset. */
export interface Faults {
  /** Share of calls answered 500 before anything is recorded (0..1). */
  errorRate: number;
  /** Delay before every answer. */
  latencyMs: number;
  /** Every call answered 503 while true. */
  outage: boolean;
  /** Only refunds answered 503 while true (a degraded refunds API). */
  refundOutage: boolean;
  /** The next N charges are recorded, then never answered (the client times out). */
  chargeThenTimeout: number;
  /** Time a charge takes to process once accepted; it lands even when the client gave up waiting. */
  chargeLatencyMs: number;
}

/** Test tokens that are declined, with the provider's decline code. */
export const DECLINED_TOKENS: Readonly<Record<string, string>> = {
  tok_decline: 'card_declined',
  tok_insufficient_funds: 'insufficient_funds',
  tok_expired: 'expired_card',
};

/** No fault at all: what a reset sets, and what tests set between cases. */
export const NO_FAULTS: Readonly<Faults> = {
  errorRate: 0,
  latencyMs: 0,
  outage: false,
  refundOutage: false,
  chargeThenTimeout: 0,
  chargeLatencyMs: 0,
};

interface StoredAnswer {
  fingerprint: string;
  status: number;
  body: unknown;
}

/** What the sandbox keeps across restarts when given a ledger file: the provider's own records. */
interface LedgerState {
  charges: Charge[];
  refunds: Refund[];
  answersByKey: [string, StoredAnswer][];
  closedReferences: string[];
}

/**
 * `ledgerFile`: keep charges, refunds, answered idempotency keys and closed references in this
 * file (rewritten whole after every change), so a restarted sandbox still knows what it charged,
 * as a real provider does; without it the ledger lives in memory.
 */
export function createPaymentGatewayApp(options: { ledgerFile?: string } = {}) {
  const saved =
    options.ledgerFile && existsSync(options.ledgerFile)
      ? (JSON.parse(readFileSync(options.ledgerFile, 'utf8')) as LedgerState)
      : undefined;
  const charges = new Map<string, Charge>(saved?.charges.map((charge) => [charge.id, charge])); // by id
  const refunds: Refund[] = saved?.refunds ?? [];
  const answersByKey = new Map<string, StoredAnswer>(saved?.answersByKey);
  /** Charges being processed: idempotency key → merchant reference. */
  const chargesInProgress = new Map<string, string>();
  /** References a refund found nothing to refund for: no charge may land on them afterwards. */
  const closedReferences = new Set<string>(saved?.closedReferences);
  /** Writes the ledger file (to a temporary file first, so a crash mid-write leaves the last good one). */
  const persist = () => {
    if (!options.ledgerFile) return;
    const state: LedgerState = {
      charges: [...charges.values()],
      refunds,
      answersByKey: [...answersByKey.entries()],
      closedReferences: [...closedReferences],
    };
    writeFileSync(`${options.ledgerFile}.tmp`, JSON.stringify(state));
    renameSync(`${options.ledgerFile}.tmp`, options.ledgerFile);
  };
  const inProgressFor = (reference: string) => [...chargesInProgress.values()].filter((r) => r === reference).length;
  let faults: Faults = { ...NO_FAULTS };
  const calls: { operation: 'charge' | 'refund'; reference: string | undefined; traceparent?: string }[] = [];
  const referenceOf = (req: Request) => {
    const reference = (req.body as Record<string, unknown> | undefined)?.reference;
    return typeof reference === 'string' ? reference : undefined;
  };

  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: '64kb' }));

  const error = (res: Response, status: number, type: string, code: string, message: string) =>
    res.status(status).json({ error: { type, code, message } });

  /** Applies faults; resolves false when the call was answered by a fault. */
  async function passFaults(res: Response, operation: 'charge' | 'refund'): Promise<boolean> {
    if (faults.latencyMs > 0) await new Promise((r) => setTimeout(r, faults.latencyMs));
    if (faults.outage || (operation === 'refund' && faults.refundOutage)) {
      error(res, 503, 'api_error', 'service_unavailable', 'the gateway is unavailable (sandbox outage)');
      return false;
    }
    if (faults.errorRate > 0 && Math.random() < faults.errorRate) {
      error(res, 500, 'api_error', 'internal_error', 'internal error (sandbox error rate)');
      return false;
    }
    return true;
  }

  /** Replays the stored answer of a key, or rejects a key reused with other parameters. Returns true when answered. */
  function answeredFromKey(req: Request, res: Response, key: string): boolean {
    const stored = answersByKey.get(key);
    if (!stored) return false;
    if (stored.fingerprint !== JSON.stringify(req.body)) {
      error(
        res,
        409,
        'idempotency_error',
        'idempotency_key_reused',
        'this Idempotency-Key was used with different parameters',
      );
    } else {
      res.setHeader('Idempotent-Replayed', 'true');
      res.status(stored.status).json(stored.body);
    }
    return true;
  }

  function remember(req: Request, key: string, status: number, body: unknown) {
    answersByKey.set(key, { fingerprint: JSON.stringify(req.body), status, body });
    persist();
  }

  app.post('/v1/charges', async (req, res) => {
    calls.push({ operation: 'charge', reference: referenceOf(req), traceparent: req.get('traceparent') });
    if (!(await passFaults(res, 'charge'))) return;
    const key = req.get('idempotency-key');
    if (!key)
      return error(res, 400, 'invalid_request_error', 'missing_idempotency_key', 'send an Idempotency-Key header');
    if (answeredFromKey(req, res, key)) return;
    if (chargesInProgress.has(key))
      return error(
        res,
        409,
        'idempotency_error',
        'idempotency_key_in_use',
        'a request with this Idempotency-Key is still being processed; retry shortly',
      );
    const { amount, currency, source, reference } = (req.body ?? {}) as Record<string, unknown>;
    if (!Number.isInteger(amount) || (amount as number) <= 0)
      return error(
        res,
        400,
        'invalid_request_error',
        'invalid_amount',
        'amount must be a positive integer in minor units',
      );
    if (typeof currency !== 'string' || !/^[A-Z]{3}$/.test(currency))
      return error(res, 400, 'invalid_request_error', 'invalid_currency', 'currency must be an ISO 4217 code');
    if (typeof source !== 'string' || !source.startsWith('tok_'))
      return error(res, 400, 'invalid_request_error', 'invalid_source', 'source must be a token starting with tok_');
    if (typeof reference !== 'string' || reference === '')
      return error(res, 400, 'invalid_request_error', 'invalid_reference', 'reference is required');
    if (closedReferences.has(reference))
      return error(
        res,
        409,
        'invalid_request_error',
        'reference_closed',
        `reference ${reference} was closed by a refund; it cannot be charged`,
      );
    if (faults.chargeLatencyMs > 0) {
      chargesInProgress.set(key, reference);
      await new Promise((r) => setTimeout(r, faults.chargeLatencyMs));
      chargesInProgress.delete(key);
    }
    const declineCode = DECLINED_TOKENS[source];
    if (declineCode) {
      const body = {
        error: { type: 'card_error', code: declineCode, message: `the card was declined (${declineCode})` },
      };
      remember(req, key, 402, body);
      return res.status(402).json(body);
    }
    const charge: Charge = {
      id: `ch_${randomUUID()}`,
      reference,
      amount: amount as number,
      currency,
      status: 'succeeded',
      refunded: false,
      createdAt: new Date().toISOString(),
    };
    charges.set(charge.id, charge);
    persist();
    remember(req, key, 201, charge);
    if (faults.chargeThenTimeout > 0) {
      faults.chargeThenTimeout -= 1;
      // Charged, but the answer never comes: the client's timeout fires. Held until the client gives up.
      req.socket.setTimeout(0);
      return;
    }
    res.status(201).json(charge);
  });

  app.post('/v1/refunds', async (req, res) => {
    calls.push({ operation: 'refund', reference: referenceOf(req), traceparent: req.get('traceparent') });
    if (!(await passFaults(res, 'refund'))) return;
    const key = req.get('idempotency-key');
    if (!key)
      return error(res, 400, 'invalid_request_error', 'missing_idempotency_key', 'send an Idempotency-Key header');
    if (answeredFromKey(req, res, key)) return;
    const { reference, charge: chargeId } = (req.body ?? {}) as Record<string, unknown>;
    if (typeof reference === 'string' && inProgressFor(reference) > 0)
      // The charge's outcome is not known yet: refunding now could miss money that is about to land.
      return error(
        res,
        409,
        'invalid_request_error',
        'charge_in_progress',
        `a charge for reference ${reference} is still being processed; retry the refund shortly`,
      );
    const charge = [...charges.values()].find(
      (c) => !c.refunded && (c.id === chargeId || (typeof reference === 'string' && c.reference === reference)),
    );
    if (!charge) {
      // Refunding what was never charged is a harmless, explicit no-op: saga compensations rely on it.
      // The reference is closed, so a charge that arrives later cannot make the answer wrong.
      if (typeof reference === 'string') closedReferences.add(reference);
      persist();
      const body = {
        status: 'no_charge',
        reference,
        message: 'no captured charge for this reference; nothing refunded; the reference is closed',
      };
      remember(req, key, 200, body);
      return res.status(200).json(body);
    }
    charge.refunded = true;
    const refund: Refund = {
      id: `re_${randomUUID()}`,
      chargeId: charge.id,
      reference: charge.reference,
      amount: charge.amount,
      status: 'succeeded',
      createdAt: new Date().toISOString(),
    };
    refunds.push(refund);
    persist();
    remember(req, key, 201, refund);
    res.status(201).json(refund);
  });

  // Look-up of charges by merchant reference or idempotency key, with the count still being processed;
  // or, with created_gte, the charges created in a time range, oldest first, a page at a time.
  app.get('/v1/charges', (req, res) => {
    const reference = typeof req.query.reference === 'string' ? req.query.reference : undefined;
    const key = typeof req.query.key === 'string' ? req.query.key : undefined;
    if (typeof req.query.created_gte === 'string') return listCharges(req, res);
    if (!reference && !key)
      return error(res, 400, 'invalid_request_error', 'missing_filter', 'give ?reference=…, ?key=… or ?created_gte=…');
    const byKey = key ? (answersByKey.get(key)?.body as Charge | undefined) : undefined;
    const found = reference
      ? [...charges.values()].filter((c) => c.reference === reference)
      : byKey?.id && charges.has(byKey.id)
        ? [charges.get(byKey.id)!]
        : [];
    res.json({
      data: found,
      inProgress: reference ? inProgressFor(reference) : key && chargesInProgress.has(key) ? 1 : 0,
      referenceClosed: reference ? closedReferences.has(reference) : undefined,
    });
  });

  /** GET /v1/charges?created_gte=ISO[&created_lt=ISO][&limit=N][&starting_after=charge id]: {data, has_more}. */
  function listCharges(req: Request, res: Response) {
    const { created_gte: gte, created_lt: lt } = req.query;
    const from = typeof gte === 'string' ? Date.parse(gte) : Number.NaN;
    const to = lt === undefined ? Infinity : typeof lt === 'string' ? Date.parse(lt) : Number.NaN;
    const limit = req.query.limit === undefined ? 100 : Number(req.query.limit);
    if (Number.isNaN(from) || Number.isNaN(to))
      return error(res, 400, 'invalid_request_error', 'invalid_time', 'created_gte and created_lt are ISO 8601 times');
    if (!Number.isInteger(limit) || limit < 1 || limit > 1_000)
      return error(res, 400, 'invalid_request_error', 'invalid_limit', 'limit is a whole number from 1 to 1000');
    // Charges are kept in creation order, so a page continues after the last one the caller saw.
    const inRange = [...charges.values()].filter(
      (c) => Date.parse(c.createdAt) >= from && Date.parse(c.createdAt) < to,
    );
    const after = typeof req.query.starting_after === 'string' ? req.query.starting_after : undefined;
    const start = after ? inRange.findIndex((c) => c.id === after) + 1 : 0;
    if (after && start === 0)
      return error(res, 400, 'invalid_request_error', 'invalid_cursor', `starting_after ${after}: no such charge here`);
    const page = inRange.slice(start, start + limit);
    return res.json({ data: page, has_more: start + limit < inRange.length });
  }

  app.get('/v1/ledger', (req, res) => {
    const reference = typeof req.query.reference === 'string' ? req.query.reference : undefined;
    const chargeList = [...charges.values()].filter((c) => !reference || c.reference === reference);
    const refundList = refunds.filter((r) => !reference || r.reference === reference);
    const captured =
      chargeList.reduce((sum, c) => sum + c.amount, 0) - refundList.reduce((sum, r) => sum + r.amount, 0);
    // Every call received, answered or not (faults included), for the reference or in all.
    const callList = calls.filter((c) => !reference || c.reference === reference);
    const callCounts = {
      charges: callList.filter((c) => c.operation === 'charge').length,
      refunds: callList.filter((c) => c.operation === 'refund').length,
    };
    // The trace context each call carried (W3C traceparent), so tracing can be checked end to end.
    const traceparents = callList.flatMap((c) => (c.traceparent ? [c.traceparent] : []));
    res.json({ charges: chargeList, refunds: refundList, netCaptured: captured, calls: callCounts, traceparents });
  });

  app.get('/admin/faults', (_req, res) => res.json(faults));
  app.post('/admin/faults', (req, res) => {
    const patch = (req.body ?? {}) as Partial<Faults>;
    const next = { ...faults, ...patch };
    const valid =
      typeof next.errorRate === 'number' &&
      next.errorRate >= 0 &&
      next.errorRate <= 1 &&
      Number.isInteger(next.latencyMs) &&
      next.latencyMs >= 0 &&
      typeof next.outage === 'boolean' &&
      typeof next.refundOutage === 'boolean' &&
      Number.isInteger(next.chargeThenTimeout) &&
      next.chargeThenTimeout >= 0 &&
      Number.isInteger(next.chargeLatencyMs) &&
      next.chargeLatencyMs >= 0;
    if (!valid)
      return error(
        res,
        400,
        'invalid_request_error',
        'invalid_faults',
        'expected { errorRate: 0..1, latencyMs: int >= 0, outage: boolean, refundOutage: boolean, chargeThenTimeout: int >= 0, chargeLatencyMs: int >= 0 }',
      );
    faults = next;
    res.json(faults);
  });
  app.post('/admin/reset', (_req, res) => {
    charges.clear();
    refunds.length = 0;
    answersByKey.clear();
    chargesInProgress.clear();
    closedReferences.clear();
    faults = { ...NO_FAULTS };
    calls.length = 0;
    persist();
    res.json({ reset: true });
  });
  app.get('/health', (_req, res) => res.json({ status: 'ok' }));

  return app;
}

/** Starts the sandbox on `port` (0 = any free port); resolves with its URL and a close function. */
export async function startPaymentGateway(
  port = 0,
  host = '127.0.0.1',
  options: { ledgerFile?: string } = {},
): Promise<{ url: string; server: Server; close: () => Promise<void> }> {
  const app = createPaymentGatewayApp(options);
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(port, host, (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${bound}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
