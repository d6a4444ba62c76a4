// Operator commands run on a developer's machine find the local stack by themselves: `npm start`
// writes the addresses it serves to .data/local-stack.json while it runs (its NATS listens on
// 4322, not the 4222 default, because machines often run a NATS of their own). An address set in
// the environment always wins, and so does a Temporal CLI profile (TEMPORAL_PROFILE,
// TEMPORAL_CONFIG_FILE) over the stack's Temporal; a file left by a stack no longer running is ignored.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isProcessRunning } from '../lib/process-running.js';

/** Where `npm start` records its addresses; ORDER_SAGA_LOCAL_STACK_FILE moves it (tests). */
export const LOCAL_STACK_FILE =
  process.env.ORDER_SAGA_LOCAL_STACK_FILE ?? fileURLToPath(new URL('../.data/local-stack.json', import.meta.url));

/** The addresses a running `npm start` serves, as the variables the processes read. */
export interface LocalStackAddresses {
  pid: number;
  NATS_URL: string;
  TEMPORAL_ADDRESS: string;
  /** The ingress's base URL, for commands that go through the API (npm run inventory). */
  ORDER_SAGA_API_URL: string;
  /** The payment sandbox, and the stack's payload key (the file is private to its user), for npm run reconcile. */
  PAYMENT_GATEWAY_URL?: string;
  PAYLOAD_ENCRYPTION_KEYS?: string;
}

/** Shown as taken, never printed. */
const SECRETS: readonly string[] = ['PAYLOAD_ENCRYPTION_KEYS'];

/**
 * The environment with NATS_URL and TEMPORAL_ADDRESS taken from the running local stack where the
 * environment leaves them unset, and a line saying so (undefined when nothing was taken).
 */
export function withLocalStackAddresses(
  env: Record<string, string | undefined>,
  names: readonly (keyof Omit<LocalStackAddresses, 'pid'>)[] = ['NATS_URL', 'TEMPORAL_ADDRESS'],
): {
  env: Record<string, string | undefined>;
  note: string | undefined;
} {
  if (!existsSync(LOCAL_STACK_FILE)) return { env, note: undefined };
  const stack = JSON.parse(readFileSync(LOCAL_STACK_FILE, 'utf8')) as LocalStackAddresses;
  if (!isProcessRunning(stack.pid)) return { env, note: undefined };
  // A Temporal CLI profile chosen by name or file has an address of its own (lib/config.ts reads it).
  const profileChosen = Boolean(env.TEMPORAL_PROFILE || env.TEMPORAL_CONFIG_FILE);
  const taken = names.filter((name) => !env[name] && stack[name] && !(name === 'TEMPORAL_ADDRESS' && profileChosen));
  if (taken.length === 0) return { env, note: undefined };
  return {
    env: { ...env, ...Object.fromEntries(taken.map((name) => [name, stack[name]])) },
    note: `using the local stack (npm start, pid ${stack.pid}): ${taken
      .map((name) => `${name}=${SECRETS.includes(name) ? "(the stack's)" : stack[name]}`)
      .join(' ')}; set ${taken.join(' / ')} to reach another`,
  };
}
