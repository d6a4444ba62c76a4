// `npm run inventory -- show|set|add SKU [N]`: reads and changes stock through the API (an
// operator's act: authenticated, audited on AUDIT with the operator's name). Reserved units are
// never changed: `set` replaces the available units, `add` adds to them. `release ORDER_ID` gives
// back the stock of an order whose saga no longer needs it (what `npm run reconcile` reports).
// Every change is sent with an Idempotency-Key (--key, or a new one): when no worker answers in
// time the change may still have been applied, so it is sent again with the same key, which the
// workers apply at most once; the output says what was applied.
//   ORDER_SAGA_API_URL   the ingress (default: the running local stack's, else http://localhost:8080)
//   ORDER_SAGA_API_KEY   an operator's API key (X-Api-Key), or
//   ORDER_SAGA_TOKEN     an operator's bearer token
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { withLocalStackAddresses } from './local-stack.js';

const USAGE = `usage: npm run inventory -- show SKU | set SKU N [--key KEY] | add SKU N [--key KEY] | release ORDER_ID
  show SKU            available and reserved units of SKU
  set SKU N           make N units available (N ≥ 0; reserved units stay as they are)
  add SKU N           add N units (N ≥ 1)
  --key KEY           the change's Idempotency-Key (default: a new one); run a change again with the key it
                      printed to retry it safely: it is applied at most once
  release ORDER_ID    give back the units reserved for an order that ended without shipping or has no saga
Set ORDER_SAGA_API_URL, and ORDER_SAGA_API_KEY or ORDER_SAGA_TOKEN (an operator's), for a deployment.
`;

/** Sends of a change in all while no worker answers in time (each send waits up to the ingress's 10 s). */
const CHANGE_ATTEMPTS = 3;

class UsageError extends Error {}

function parseUnits(text: string | undefined): number {
  if (text === undefined || !/^\d+$/.test(text)) {
    throw new UsageError(
      `N must be a whole number of units, not negative (got ${text === undefined ? 'nothing' : `"${text}"`})`,
    );
  }
  return Number(text);
}

/** The arguments without `--key KEY`, and the key. */
function takeKey(argv: string[]): { args: string[]; key: string | undefined } {
  const at = argv.indexOf('--key');
  if (at === -1) return { args: argv, key: undefined };
  const key = argv[at + 1];
  if (key === undefined || !/^[\x21-\x7e]{1,255}$/.test(key))
    throw new UsageError('--key takes 1 to 255 visible ASCII characters, e.g. the key an earlier run printed');
  return { args: [...argv.slice(0, at), ...argv.slice(at + 2)], key };
}

async function main(): Promise<number> {
  const { args, key: givenKey } = takeKey(process.argv.slice(2));
  // target: the SKU, or for release the order id.
  const [command, target, count, ...extra] = args;
  if (!target || extra.length > 0 || !['show', 'set', 'add', 'release'].includes(command ?? ''))
    throw new UsageError('');
  if ((command === 'show' || command === 'release') && count !== undefined)
    throw new UsageError(`${command} takes one argument`);
  if ((command === 'show' || command === 'release') && givenKey !== undefined)
    throw new UsageError(`--key is for set and add; ${command} changes nothing twice`);
  const { env, note } = withLocalStackAddresses(process.env, ['ORDER_SAGA_API_URL']);
  if (note) console.error(note);
  const api = env.ORDER_SAGA_API_URL ?? 'http://localhost:8080';
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (env.ORDER_SAGA_API_KEY) headers['x-api-key'] = env.ORDER_SAGA_API_KEY;
  else if (env.ORDER_SAGA_TOKEN) headers.authorization = `Bearer ${env.ORDER_SAGA_TOKEN}`;
  const path = `${api}/inventory/${encodeURIComponent(target)}`;
  const key = givenKey ?? `inventory-cli-${randomUUID()}`;
  const send = () =>
    command === 'release'
      ? fetch(`${api}/inventory/reservations/${encodeURIComponent(target)}/release`, { method: 'POST', headers })
      : command === 'show'
        ? fetch(path, { headers })
        : command === 'set'
          ? fetch(path, {
              method: 'PUT',
              headers: { ...headers, 'idempotency-key': key },
              body: JSON.stringify({ available: parseUnits(count) }),
            })
          : fetch(`${path}/restock`, {
              method: 'POST',
              headers: { ...headers, 'idempotency-key': key },
              body: JSON.stringify({ units: parseUnits(count) }),
            });
  const change = command === 'set' || command === 'add';
  let response: Response;
  for (let attempt = 1; ; attempt += 1) {
    response = await send().catch((error: Error) => {
      throw new Error(
        `cannot reach the API at ${api} (${error.message}); set ORDER_SAGA_API_URL` +
          (change ? `. The change may have been applied: run again with --key ${key} to apply it at most once` : ''),
      );
    });
    if (!change || response.status !== 503 || attempt === CHANGE_ATTEMPTS) break;
    // No worker answered in time: one may still apply it. The same key makes the next send safe.
    const wait = Number(response.headers.get('retry-after') ?? 5);
    console.error(`no answer yet (503); sending the change again with the same key in ${wait} s`);
    await sleep(wait * 1_000);
  }
  const body = (await response.json()) as Record<string, unknown>;
  if (!response.ok) {
    console.error(`${response.status} ${String(body.title)}: ${String(body.detail)}`);
    if (change && response.status === 503)
      console.error(`The change may have been applied: run again with --key ${key} to apply it at most once.`);
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
  // GET answers the level; PUT and POST answer {level, before, applied, replayed} (no before: the SKU is new).
  type Level = { sku: string; available: number; reserved: number };
  if (command === 'show') {
    const level = body as Level;
    console.log(`${level.sku}: ${level.available} available, ${level.reserved} reserved`);
    return 0;
  }
  const { level, before, applied, replayed } = body as {
    level: Level;
    before?: Level;
    applied: { set: number } | { add: number };
    replayed: boolean;
  };
  const what = 'set' in applied ? `set to ${applied.set}` : `added ${applied.add}`;
  const was = before ? `was ${before.available} available` : 'new SKU';
  console.log(`${level.sku}: ${what}: ${level.available} available, ${level.reserved} reserved (${was})`);
  if (replayed) console.log(`already applied with key ${key}; not applied again`);
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
