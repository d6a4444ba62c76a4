// `npm run replay-gate`: before a build is made current, replays the order sagas a live Temporal
// holds (started in a recent window, open and closed, every execution status) against that build's
// workflow bundle, and fails when any of them does not replay: a saga change that would break the
// sagas in flight (or those a rollback or a versioning override moves to it) is caught here, not
// by a stuck workflow task in production. Read-only. Exit 0: every history replays; 1: one does not
// (listed with its workflow id, run id and error); 2: a bad command line, or a Temporal it cannot
// reach or histories it cannot decrypt (PAYLOAD_ENCRYPTION_KEYS without the key they were written with).
// Reads the processes' variables (TEMPORAL_*, PAYLOAD_ENCRYPTION_KEYS to decode the histories).
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { isGrpcServiceError } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { loadConfigOrExit, parseDuration } from '../lib/config.js';
import { connectTemporalClient, dataConverter } from '../lib/temporal-client.js';
import { currentWorkflowBundle, replayHistories, type WorkflowBundleSource } from '../workers/replay-histories.js';
import { withLocalStackAddresses } from './local-stack.js';
import {
  recentHistories,
  REPLAY_STATUSES,
  visibilityQuery,
  type RecentHistory,
  type ReplayStatus,
} from './replay-gate/recent-histories.js';

const USAGE = `usage: npm run replay-gate -- [--bundle PATH] [--since DURATION] [--limit N] [--query FILTER] [--require-histories] [--json]
  --bundle PATH         the workflow bundle of the build to check (npm run build writes dist/workers/workflow-bundle.js);
                        default: this build's bundle when run from dist/, else workflows/ bundled from this checkout
  --since 24h           replay the sagas started this long ago or later (default 24h)
  --limit 50            at most this many sagas per execution status, the newest (default 50)
  --query FILTER        a visibility filter ANDed with the gate's own, e.g. "TaskQueue = 'orders'"
  --require-histories   exit 1 when there is nothing to replay (a gate that checked nothing passed nothing)
  --json                print the result as JSON (for a pipeline's log or a script)
Exit status: 0 every history replays, 1 one does not (or none found, with --require-histories),
             2 a bad command line, or it could not run (Temporal unreachable, a payload key missing).`;

const DEFAULT_SINCE = '24h';
const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 10_000;
/** Temporal keeps closed workflows for its retention (days); a longer window is almost surely a typo. */
const MAX_SINCE_MS = parseDuration('3650d')!;
/** gRPC's INVALID_ARGUMENT: how Temporal refuses a visibility query it cannot parse. */
const GRPC_INVALID_ARGUMENT = 3;

class UsageError extends Error {}
/** --help: the usage on stdout, exit 0. */
class HelpRequested extends Error {}

interface GateArguments {
  bundlePath?: string;
  sinceMs: number;
  /** As given (24h), for the report. */
  sinceText: string;
  limit: number;
  query?: string;
  requireHistories: boolean;
  json: boolean;
}

const VALUE_FLAGS = ['--bundle', '--since', '--limit', '--query'];
const SWITCHES = ['--require-histories', '--json'];

function parseArguments(argv: string[]): GateArguments {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 1) {
    const flag = argv[i]!;
    if (flag === '--help' || flag === '-h') throw new HelpRequested();
    if (SWITCHES.includes(flag)) flags.set(flag, '');
    else if (VALUE_FLAGS.includes(flag)) {
      const value = argv[(i += 1)];
      if (value === undefined || value.startsWith('--')) throw new UsageError(`${flag} needs a value`);
      flags.set(flag, value);
    } else throw new UsageError(`unknown argument ${flag}`);
  }
  const sinceText = flags.get('--since') ?? DEFAULT_SINCE;
  const sinceMs = parseDuration(sinceText);
  if (sinceMs === undefined || sinceMs <= 0 || sinceMs > MAX_SINCE_MS)
    throw new UsageError(`--since takes a duration such as 30m, 24h or 7d, at most 3650d (got ${sinceText})`);
  const limitText = flags.get('--limit') ?? String(DEFAULT_LIMIT);
  const limit = /^\d+$/.test(limitText) ? Number(limitText) : Number.NaN;
  if (!(limit >= 1 && limit <= MAX_LIMIT))
    throw new UsageError(`--limit takes a whole number of sagas per status, 1 to ${MAX_LIMIT} (got ${limitText})`);
  const query = flags.get('--query');
  if (query !== undefined && query.trim() === '')
    throw new UsageError('--query takes a visibility filter such as "TaskQueue = \'orders\'" (got an empty one)');
  const bundlePath = flags.get('--bundle');
  if (bundlePath !== undefined && !(existsSync(bundlePath) && statSync(bundlePath).isFile()))
    throw new UsageError(
      `--bundle: there is no file ${bundlePath}; give the workflow bundle of the build to check ` +
        '(npm run build writes dist/workers/workflow-bundle.js)',
    );
  return {
    ...(bundlePath !== undefined && { bundlePath: resolve(bundlePath) }),
    sinceMs,
    sinceText,
    limit,
    ...(query !== undefined && { query }),
    requireHistories: flags.has('--require-histories'),
    json: flags.has('--json'),
  };
}

/** What the gate found, as printed (and as --json gives it). */
interface GateResult {
  address: string;
  namespace: string;
  since: string;
  limit: number;
  query?: string;
  bundle: string;
  statuses: Record<ReplayStatus, { replayed: number; failed: number; moreNotChecked: boolean }>;
  failures: {
    workflowId: string;
    runId: string;
    status: ReplayStatus;
    kind: 'nondeterminism' | 'other';
    /** What went wrong, in a line; `detail`: the SDK's whole error. */
    error: string;
    detail: string;
  }[];
  replayed: number;
  failed: number;
}

const count = (n: number, one: string, many = `${one}s`) => `${n.toLocaleString('en')} ${n === 1 ? one : many}`;

function formatResult(result: GateResult, sinceText: string): string {
  const lines = [
    `Replayed: orderSaga runs started since ${result.since} (${sinceText}) in namespace ${result.namespace} at ${result.address}, ` +
      `the newest ${result.limit} of each status${result.query ? `, matching ${result.query}` : ''}`,
    `Against: ${result.bundle}`,
  ];
  const width = Math.max(...REPLAY_STATUSES.map((status) => status.length));
  for (const status of REPLAY_STATUSES) {
    const { replayed, failed, moreNotChecked } = result.statuses[status];
    lines.push(
      `  ${status.padEnd(width)}  ${replayed} replayed${failed ? `, ${failed} FAILED` : ''}` +
        (moreNotChecked ? `  (more started in the window; raise --limit to check them too)` : ''),
    );
  }
  const total = result.replayed + result.failed;
  if (result.failed === 0) {
    lines.push(`All ${count(total, 'history', 'histories')} replay against this bundle.`);
    return lines.join('\n');
  }
  lines.push(`${count(result.failed, 'history', 'histories')} of ${total} do not replay against this bundle:`);
  for (const failure of result.failures)
    lines.push(
      `  ${failure.workflowId}  run ${failure.runId}  (${failure.status})  ${failure.kind === 'nondeterminism' ? 'NONDETERMINISM' : 'REPLAY FAILED'}`,
      `      ${failure.error}`,
    );
  const nondeterministic = result.failures.filter((failure) => failure.kind === 'nondeterminism').length;
  lines.push(
    nondeterministic > 0
      ? `Do not make this build current: its saga takes another path than ${count(nondeterministic, 'history', 'histories')} ` +
          'recorded by the running build. Make the change replay-safe, or a new build that only new sagas run, and run the gate again.'
      : 'Do not make this build current until these replay: the bundle fails them for another reason than ' +
          'nondeterminism (read the error: a workflow type it lacks, an exception while replaying).',
  );
  return lines.join('\n');
}

async function workflowBundle(
  bundlePath: string | undefined,
): Promise<{ bundle: WorkflowBundleSource; description: string }> {
  if (bundlePath) return { bundle: { codePath: bundlePath }, description: bundlePath };
  return currentWorkflowBundle();
}

/** A visibility query Temporal cannot parse is the operator's --query (the gate's own is fixed). */
function refusedQuery(error: unknown): string | undefined {
  const grpc = isGrpcServiceError(error)
    ? error
    : error instanceof Error && isGrpcServiceError(error.cause)
      ? error.cause
      : undefined;
  const code: number | undefined = grpc?.code;
  return code === GRPC_INVALID_ARGUMENT ? grpc?.details : undefined;
}

async function main(argv: string[]): Promise<number> {
  const args = parseArguments(argv);
  const { env, note } = withLocalStackAddresses(process.env, ['TEMPORAL_ADDRESS', 'PAYLOAD_ENCRYPTION_KEYS']);
  if (note) console.error(note);
  const config = loadConfigOrExit(env);
  // The replay worker's own lines (state changes, each failed workflow task) repeat what the report says.
  Runtime.install({
    logger: new DefaultLogger('ERROR'),
    telemetryOptions: { logging: { forward: {}, filter: { core: 'ERROR', other: 'ERROR' } } },
    shutdownSignals: [],
  });
  const since = new Date(Date.now() - args.sinceMs);
  const { sinceText } = args;
  const window = { since, limit: args.limit, ...(args.query && { query: args.query }) };
  const { client, connection } = await connectTemporalClient(config);
  let found: Awaited<ReturnType<typeof recentHistories>>;
  try {
    found = await recentHistories(client, window);
  } catch (error) {
    const refused = args.query ? refusedQuery(error) : undefined;
    if (refused)
      throw new UsageError(
        `--query: Temporal refused the visibility filter "${args.query}": ${refused} ` +
          `(the query sent: ${visibilityQuery('Running', window)})`,
      );
    throw error;
  } finally {
    await connection.close();
  }

  if (found.histories.length === 0) {
    const message =
      `Nothing to replay: no orderSaga started since ${since.toISOString()} (${sinceText}) in namespace ` +
      `${config.temporal.namespace} at ${config.temporal.address}${args.query ? ` matching ${args.query}` : ''}. ` +
      (args.requireHistories
        ? 'Failing (--require-histories): widen --since, or check TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE.'
        : 'The bundle was not checked against anything.');
    console.log(
      args.json ? JSON.stringify({ replayed: 0, failed: 0, nothingToReplay: true, message }, null, 2) : message,
    );
    return args.requireHistories ? 1 : 0;
  }

  const { bundle, description } = await workflowBundle(args.bundlePath);
  const outcomes = await replayHistories<RecentHistory>(bundle, found.histories, dataConverter(config.payloadKeys));
  const statuses = Object.fromEntries(
    REPLAY_STATUSES.map((status) => [
      status,
      { replayed: 0, failed: 0, moreNotChecked: found.truncated.includes(status) },
    ]),
  ) as GateResult['statuses'];
  const failures: GateResult['failures'] = [];
  for (const outcome of outcomes) {
    if (!outcome.failure) {
      statuses[outcome.status].replayed += 1;
      continue;
    }
    statuses[outcome.status].failed += 1;
    failures.push({
      workflowId: outcome.workflowId,
      runId: outcome.runId,
      status: outcome.status,
      kind: outcome.failure.kind,
      error: outcome.failure.message,
      detail: outcome.failure.detail,
    });
  }
  const result: GateResult = {
    address: config.temporal.address,
    namespace: config.temporal.namespace,
    since: since.toISOString(),
    limit: args.limit,
    ...(args.query && { query: args.query }),
    bundle: description,
    statuses,
    failures,
    replayed: outcomes.length - failures.length,
    failed: failures.length,
  };
  console.log(args.json ? JSON.stringify(result, null, 2) : formatResult(result, sinceText));
  return failures.length > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof HelpRequested) {
      console.log(USAGE);
      process.exit(0);
    }
    if (error instanceof UsageError) console.error(`${error.message}\n${USAGE}`);
    else console.error(`replay-gate could not run: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(2);
  },
);
