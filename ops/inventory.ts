// `npm run inventory -- show|set|add SKU [N]`: reads and changes stock through the API (an
// operator's act: authenticated, audited on AUDIT with the operator's name). Reserved units are
// never changed: `set` replaces the available units, `add` adds to them. `release ORDER_ID` gives
// back the stock of an order whose saga no longer needs it (what `npm run reconcile` reports).
//   ORDER_SAGA_API_URL   the ingress (default: the running local stack's, else http://localhost:8080)
//   ORDER_SAGA_API_KEY   an operator's API key (X-Api-Key), or
//   ORDER_SAGA_TOKEN     an operator's bearer token
import { withLocalStackAddresses } from './local-stack.js';

const USAGE = `usage: npm run inventory -- show SKU | set SKU N | add SKU N | release ORDER_ID
  show SKU            available and reserved units of SKU
  set SKU N           make N units available (N ≥ 0; reserved units stay as they are)
  add SKU N           add N units (N ≥ 1)
  release ORDER_ID    give back the units reserved for an order that ended without shipping or has no saga
Set ORDER_SAGA_API_URL, and ORDER_SAGA_API_KEY or ORDER_SAGA_TOKEN (an operator's), for a deployment.
`;

class UsageError extends Error {}

function parseUnits(text: string | undefined): number {
  if (text === undefined || !/^\d+$/.test(text)) {
    throw new UsageError(
      `N must be a whole number of units, not negative (got ${text === undefined ? 'nothing' : `"${text}"`})`,
    );
  }
  return Number(text);
}

async function main(): Promise<number> {
  // target: the SKU, or for release the order id.
  const [command, target, count, ...extra] = process.argv.slice(2);
  if (!target || extra.length > 0 || !['show', 'set', 'add', 'release'].includes(command ?? ''))
    throw new UsageError('');
  if ((command === 'show' || command === 'release') && count !== undefined)
    throw new UsageError(`${command} takes one argument`);
  const { env, note } = withLocalStackAddresses(process.env, ['ORDER_SAGA_API_URL']);
  if (note) console.error(note);
  const api = env.ORDER_SAGA_API_URL ?? 'http://localhost:8080';
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (env.ORDER_SAGA_API_KEY) headers['x-api-key'] = env.ORDER_SAGA_API_KEY;
  else if (env.ORDER_SAGA_TOKEN) headers.authorization = `Bearer ${env.ORDER_SAGA_TOKEN}`;
  const path = `${api}/inventory/${encodeURIComponent(target)}`;
  const request =
    command === 'release'
      ? fetch(`${api}/inventory/reservations/${encodeURIComponent(target)}/release`, { method: 'POST', headers })
      : command === 'show'
        ? fetch(path, { headers })
        : command === 'set'
          ? fetch(path, { method: 'PUT', headers, body: JSON.stringify({ available: parseUnits(count) }) })
          : fetch(`${path}/restock`, { method: 'POST', headers, body: JSON.stringify({ units: parseUnits(count) }) });
  const response = await request.catch((error: Error) => {
    throw new Error(`cannot reach the API at ${api} (${error.message}); set ORDER_SAGA_API_URL`);
  });
  const body = (await response.json()) as Record<string, unknown>;
  if (!response.ok) {
    console.error(`${response.status} ${String(body.title)}: ${String(body.detail)}`);
    return 1;
  }
  if (command === 'release') {
    console.log(
      body.released
        ? `order ${target}: its reserved units were given back`
        : `order ${target}: nothing was reserved; nothing changed`,
    );
    return 0;
  }
  // GET answers the level; PUT and POST answer {level, before} (no before: the SKU is new).
  type Level = { sku: string; available: number; reserved: number };
  const { level, before } = (command === 'show' ? { level: body } : body) as { level: Level; before?: Level };
  const was = command === 'show' ? '' : before ? ` (was ${before.available} available)` : ' (new SKU)';
  console.log(`${level.sku}: ${level.available} available, ${level.reserved} reserved${was}`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError) {
      if (error.message) console.error(error.message);
      console.error(USAGE);
      process.exit(2);
    }
    console.error((error as Error).message);
    process.exit(1);
  },
);
