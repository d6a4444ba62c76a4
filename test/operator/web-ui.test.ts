// The Temporal Web UI in a real browser (Debian's Chromium driven by playwright-core): an
// operator filters by OrderStatus, opens a compensated saga and sees its compensation steps.
// UPDATE_SCREENSHOTS=1 writes the screenshots used by the docs (docs/images/).
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import type { Client } from '@temporalio/client';
import { newTraceId } from '../../lib/envelope.js';
import { orderWorkflowId } from '../../workflows/contract.js';
import type { Order } from '../../domain/order.js';
import type { orderSaga } from '../../workflows/order-saga.js';
import type { ActivityTier } from '../support/activity-tier.js';
import { fastSagaSettings, startInProcessWorker, type RunningWorker } from '../support/temporal.js';
import { startTestSaga } from '../support/orders.js';
import { startSagaTier, type SagaTier } from '../support/saga-tier.js';

const chromiumPath = inject('chromiumPath');
const SCREENSHOTS = fileURLToPath(
  new URL(process.env.UPDATE_SCREENSHOTS ? '../../docs/images/' : '../../.data/screenshots/', import.meta.url),
);

let stack: ActivityTier;
let worker: RunningWorker;
let client: Client;
let environment: SagaTier;
let browser: Browser;

// Runs wherever Chromium can be had; otherwise the harness printed why at the start of the run.
describe.skipIf(!chromiumPath)('Temporal Web UI in a real browser', () => {
  beforeAll(async () => {
    environment = await startSagaTier();
    ({ stack, worker, client } = environment);
    browser = await chromium.launch({
      executablePath: chromiumPath!,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    mkdirSync(SCREENSHOTS, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    await environment?.close();
  });

  it('when an operator filters by OrderStatus and opens a compensated saga, then its compensation steps are shown', async () => {
    const sku = `SKU-${randomUUID().slice(0, 8)}`;
    await stack.inventory.restock(sku, 5);
    const customerId = `c-ui-${randomUUID().slice(0, 6)}`;
    const order: Order = {
      orderId: randomUUID(),
      customerId,
      items: [{ sku, quantity: 2, unitPrice: 1_250 }],
      currency: 'EUR',
      total: 2_500,
      paymentToken: 'tok_decline',
      createdAt: new Date().toISOString(),
      traceId: newTraceId(),
    };
    const workflowId = orderWorkflowId(order.orderId);
    const handle = await client.workflow.start<typeof orderSaga>('orderSaga', {
      workflowId,
      taskQueue: worker.taskQueue,
      args: [{ order, settings: fastSagaSettings() }],
    });
    expect((await handle.result()).status).toBe('COMPENSATED');
    // Visibility is eventually consistent: wait until the filter finds the saga before opening the UI.
    const query = `OrderStatus="COMPENSATED" AND CustomerId="${customerId}"`;
    await expect.poll(async () => (await client.workflow.count(query)).count, { timeout: 20_000 }).toBe(1);

    const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
    await page.goto(`${inject('temporalUiUrl')}/namespaces/default/workflows?query=${encodeURIComponent(query)}`);
    const link = page.getByRole('link', { name: workflowId });
    await link.waitFor({ timeout: 30_000 });
    await page.screenshot({ path: `${SCREENSHOTS}web-ui-filter-compensated.png` });

    await link.click();
    await page.waitForURL(/\/workflows\/order-/, { timeout: 15_000 });
    for (const step of ['refundPayment', 'releaseInventory', 'sendNotification']) {
      await expect.poll(async () => (await page.content()).includes(step), { timeout: 20_000 }).toBe(true);
    }
    await page.screenshot({ path: `${SCREENSHOTS}web-ui-compensated-saga.png`, fullPage: true });
    await page.close();
  });

  it('when an operator filters by a build and opens a saga, then its page shows the Worker Deployment build it runs on', async () => {
    const taskQueue = `orders-ui-${randomUUID()}`;
    const deploymentName = `saga-ui-${randomUUID().slice(0, 8)}`;
    const versioned = await startInProcessWorker(stack.clients, {
      taskQueue,
      versioning: { mode: 'versioned', deploymentName, buildId: undefined, becomeCurrent: 'if-none' },
    });
    try {
      const { handle } = await startTestSaga({ client, taskQueue, inventory: stack.inventory });
      expect((await handle.result()).status).toBe('COMPLETED');
      const buildId = versioned.build!.buildId;
      // The filter the runbook gives for "every saga on a build".
      const query = `TemporalWorkerDeploymentVersion="${deploymentName}:${buildId}"`;
      await expect.poll(async () => (await client.workflow.count(query)).count, { timeout: 20_000 }).toBe(1);

      const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
      await page.goto(`${inject('temporalUiUrl')}/namespaces/default/workflows?query=${encodeURIComponent(query)}`);
      const link = page.getByRole('link', { name: handle.workflowId });
      await link.waitFor({ timeout: 30_000 });
      await link.click();
      await page.waitForURL(/\/workflows\/order-/, { timeout: 15_000 });
      // The saga's summary: its Deployment and Build ID as text of their own (not inside the list's query).
      await page.getByText(buildId, { exact: true }).first().waitFor({ timeout: 20_000 });
      await page.getByText(deploymentName, { exact: true }).first().waitFor({ timeout: 5_000 });
      await page.getByText('Pinned', { exact: true }).first().waitFor({ timeout: 5_000 });
      await page.screenshot({ path: `${SCREENSHOTS}web-ui-saga-build.png` });
      await page.close();
    } finally {
      await versioned.stop();
    }
  });
});
