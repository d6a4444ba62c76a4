// The payment sandbox as tests talk to it: its ledger (what was charged and refunded, per order
// reference) and its admin endpoints (faults on, faults off).
import type { Charge, Faults, Refund } from '../../sandbox/payment-gateway/server.js';

/** What GET /v1/ledger answers. */
export interface Ledger {
  charges: Charge[];
  refunds: Refund[];
  netCaptured: number;
  calls: { charges: number; refunds: number };
  /** The W3C traceparent header of each call, in arrival order. */
  traceparents: string[];
}

/** Talks to the sandbox's ledger and admin endpoints. */
export class PaymentSandbox {
  constructor(readonly url: string) {}

  async ledger(reference?: string): Promise<Ledger> {
    const query = reference ? `?reference=${encodeURIComponent(reference)}` : '';
    const response = await fetch(`${this.url}/v1/ledger${query}`);
    return (await response.json()) as never;
  }

  async setFaults(faults: Partial<Faults>): Promise<void> {
    const response = await fetch(`${this.url}/admin/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(faults),
    });
    if (!response.ok) throw new Error(`setFaults failed: ${response.status} ${await response.text()}`);
  }

  async reset(): Promise<void> {
    await fetch(`${this.url}/admin/reset`, { method: 'POST' });
  }
}
