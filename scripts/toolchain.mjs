#!/usr/bin/env node
// Provides the pinned server and CLI binaries this project runs against
// (Temporal CLI with its dev server and Web UI, temporal-server and temporal-sql-tool for the
// cluster tier, nats-server, tctl, helm, the NATS CLI, Prometheus).
//
// For each tool, in order: a binary named by its environment variable, a binary
// on PATH whose version matches the pin, the cache outside the clone, or a build
// from the Go module proxy into that cache. A second run finds the cache and
// does nothing. Plain Node with no dependencies, so it runs before `npm ci`.
//
// Usage: node scripts/toolchain.mjs [tool ...]   (prints "name=path" lines)
//        import { ensureTools } from './toolchain.mjs'
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, mkdtempSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The pinned tools. `version` is the Go module version; `reports` is what `<bin> <versionArgs>` prints. */
export const TOOLS = {
  temporal: {
    module: 'github.com/temporalio/cli/cmd/temporal',
    version: 'v1.5.1', // newest tag whose go.mod has no replace directive, so `go install` works
    env: 'TEMPORAL_CLI_PATH',
    versionArgs: ['--version'],
    reports: 'temporal version 1.5.1',
    ldflags: '-X github.com/temporalio/cli/temporalcli.Version=1.5.1', // as the release build stamps it
  },
  // A production-shaped Temporal (its services as separate processes on PostgreSQL) for the
  // cluster test tier and benchmark only: the server the CLI's dev server and Compose's image run.
  'temporal-server': {
    module: 'go.temporal.io/server/cmd/server',
    version: 'v1.29.1',
    builds: 'server',
    env: 'TEMPORAL_SERVER_PATH',
    versionArgs: ['--version'],
    reports: 'temporal version 1.29.1',
  },
  // Creates and upgrades the cluster's PostgreSQL schemas (embedded in the binary).
  'temporal-sql-tool': {
    module: 'go.temporal.io/server/cmd/tools/sql',
    version: 'v1.29.1',
    builds: 'sql',
    env: 'TEMPORAL_SQL_TOOL_PATH',
    versionArgs: ['--version'],
    reports: 'temporal-sql-tool version 1.29.1',
  },
  'nats-server': {
    module: 'github.com/nats-io/nats-server/v2',
    version: 'v2.12.15',
    env: 'NATS_SERVER_PATH',
    versionArgs: ['--version'],
    reports: 'v2.12.15',
  },
  tctl: {
    // The Go module proxy refuses every version of github.com/temporalio/tctl, so tctl is built
    // from its last home inside the server module (tctl 1.15.1). Its old golang.org/x/net needs
    // -checklinkname=0 to link with Go 1.23+.
    module: 'go.temporal.io/server/cmd/tools/cli',
    version: 'v1.15.2',
    builds: 'cli',
    env: 'TCTL_PATH',
    versionArgs: ['--version'],
    reports: 'tctl version 1.15.1',
    ldflags: '-checklinkname=0',
  },
  helm: {
    module: 'helm.sh/helm/v3/cmd/helm',
    version: 'v3.21.4',
    env: 'HELM_PATH',
    versionArgs: ['version', '--short'],
    reports: 'v3.21.4',
    // Helm's Makefile stamps these; without them it reports "v3.21" and assumes Kubernetes 1.20.
    // Kubernetes 1.36 matches the client-go v0.36 that helm v3.21.4 is built with.
    ldflags: [
      '-X helm.sh/helm/v3/internal/version.version=v3.21.4',
      '-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1',
      '-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=36',
      '-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1',
      '-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=36',
    ].join(' '),
  },
  nats: {
    // The NATS CLI, for the runbook's stream and consumer commands.
    module: 'github.com/nats-io/natscli/nats',
    version: 'v0.5.1',
    env: 'NATS_CLI_PATH',
    versionArgs: ['--version'],
    reports: 'v0.5.1',
  },
  prometheus: {
    // Prometheus 3.16 (its Go module versions are v0.3XX). `remove_all_sd` leaves out the cloud
    // service discoveries (the proxy refuses one of their modules; static targets are all the tests
    // need). Built without its web assets: the HTTP API is what the alert and dashboard tests use.
    module: 'github.com/prometheus/prometheus/cmd/prometheus',
    version: 'v0.316.0',
    tags: 'remove_all_sd',
    env: 'PROMETHEUS_PATH',
    versionArgs: ['--version'],
    reports: 'prometheus, version 3.16.0',
    ldflags: '-X github.com/prometheus/common/version.Version=3.16.0',
  },
};

/** Folder that holds built tools, outside the clone so fresh clones reuse it. */
export function toolCacheDir() {
  const base =
    process.env.ORDER_SAGA_TOOL_CACHE ??
    join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'order-saga', 'tools');
  return base;
}

class ToolUnavailableError extends Error {
  name = 'ToolUnavailableError';
}

function log(message) {
  process.stderr.write(`[toolchain] ${message}\n`);
}

function reportsPinnedVersion(bin, tool) {
  const result = spawnSync(bin, tool.versionArgs, { encoding: 'utf8', timeout: 15_000 });
  return result.status === 0 && `${result.stdout}${result.stderr}`.includes(tool.reports);
}

function findOnPath(name) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, name);
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

function goAvailable() {
  return spawnSync('go', ['version'], { encoding: 'utf8' }).status === 0;
}

function howToGet(name, tool) {
  return [
    `cannot get ${name} ${tool.version}.`,
    `  Ways to provide it:`,
    `  - set ${tool.env}=/path/to/${name} (a binary reporting version ${tool.reports});`,
    `  - put that binary on PATH;`,
    `  - install Go 1.24+ with access to the Go module proxy and run this again; it will run:`,
    `      go install ${tool.module}@${tool.version}`,
  ].join('\n');
}

/** Builds one tool with `go install` into the cache, showing progress; atomic against concurrent runs. */
async function build(name, tool, targetDir) {
  if (!goAvailable()) throw new ToolUnavailableError(`Go is not installed: ${howToGet(name, tool)}`);
  mkdirSync(toolCacheDir(), { recursive: true });
  const staging = mkdtempSync(join(toolCacheDir(), `.build-${name}-`));
  const args = ['install', '-v'];
  if (tool.tags) args.push(`-tags=${tool.tags}`);
  if (tool.ldflags) args.push(`-ldflags=${tool.ldflags}`);
  args.push(`${tool.module}@${tool.version}`);
  log(`building ${name} ${tool.version} from the Go module proxy (first time only, takes minutes)...`);
  const started = Date.now();
  let packages = 0;
  let tail = '';
  const code = await new Promise((resolve) => {
    const child = spawn('go', args, {
      env: { ...process.env, GOBIN: staging, CGO_ENABLED: '0', GOFLAGS: '-buildvcs=false' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const ticker = setInterval(() => {
      log(`  ${name}: ${packages} packages compiled, ${Math.round((Date.now() - started) / 1000)}s`);
    }, 15_000);
    child.stderr.on('data', (chunk) => {
      const text = chunk.toString();
      packages += text.split('\n').filter((line) => line && !line.startsWith('go: ')).length;
      tail = (tail + text).slice(-4000);
    });
    child.on('close', (status) => {
      clearInterval(ticker);
      resolve(status);
    });
  });
  if (code !== 0) {
    rmSync(staging, { recursive: true, force: true });
    throw new ToolUnavailableError(`go install failed for ${name}:\n${tail}\n${howToGet(name, tool)}`);
  }
  const binary = tool.builds ?? name;
  if (binary !== name) renameSync(join(staging, binary), join(staging, name));
  rmSync(targetDir, { recursive: true, force: true });
  mkdirSync(join(targetDir, '..'), { recursive: true });
  try {
    renameSync(staging, targetDir);
  } catch (error) {
    // Another run finished the same build first; theirs is as good as ours.
    if (!existsSync(join(targetDir, name))) throw error;
    rmSync(staging, { recursive: true, force: true });
  }
  log(`built ${name} ${tool.version} in ${Math.round((Date.now() - started) / 1000)}s`);
}

/**
 * Resolves one tool to an absolute path, building it if needed.
 * @param {string} name
 * @returns {Promise<string>}
 */
export async function ensureTool(name) {
  const tool = TOOLS[name];
  if (!tool) throw new Error(`unknown tool "${name}"; known: ${Object.keys(TOOLS).join(', ')}`);
  const fromEnv = process.env[tool.env];
  if (fromEnv) {
    if (!reportsPinnedVersion(fromEnv, tool)) {
      throw new ToolUnavailableError(
        `${tool.env}=${fromEnv} does not report version ${tool.reports}; unset it or point it at ${name} ${tool.version}.`,
      );
    }
    return fromEnv;
  }
  const onPath = findOnPath(name);
  if (onPath && reportsPinnedVersion(onPath, tool)) return onPath;
  const targetDir = join(toolCacheDir(), `${name}-${tool.version}`);
  const cached = join(targetDir, name);
  if (existsSync(cached) && reportsPinnedVersion(cached, tool)) return cached;
  await build(name, tool, targetDir);
  if (!reportsPinnedVersion(cached, tool))
    throw new ToolUnavailableError(`${cached} was built but does not report ${tool.reports}.`);
  return cached;
}

/**
 * Resolves several tools (sequentially: each Go build already uses every core).
 * @param {string[]} [names]
 * @returns {Promise<Record<string, string>>}
 */
export async function ensureTools(names = Object.keys(TOOLS)) {
  const paths = {};
  for (const name of names) paths[name] = await ensureTool(name);
  return paths;
}

/**
 * Finds Chromium for the real-browser tests: CHROMIUM_PATH, then Debian's /usr/bin/chromium;
 * as root with apt-get it installs Debian's package. Resolves undefined, with the reason, when
 * it cannot (browser downloads by test tools do not work on these machines).
 * @returns {Promise<{ path?: string, reason?: string }>}
 */
export async function ensureChromium() {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter(Boolean);
  const found = () => candidates.find((candidate) => existsSync(candidate));
  if (found()) return { path: found() };
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot || spawnSync('apt-get', ['--version']).status !== 0) {
    return {
      reason:
        'Chromium is not installed: install Debian\'s "chromium" package (apt-get install chromium) or set CHROMIUM_PATH',
    };
  }
  log("installing Chromium from Debian's packages (first time only)...");
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [
    ['update', '-q'],
    ['install', '-y', '-q', '--no-install-recommends', 'chromium'],
  ]) {
    const result = spawnSync('apt-get', args, { stdio: ['ignore', 'inherit', 'inherit'], env });
    if (result.status !== 0) return { reason: `apt-get ${args.join(' ')} failed (exit ${result.status})` };
  }
  return found() ? { path: found() } : { reason: 'apt-get installed chromium but no binary was found' };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const names = process.argv.slice(2);
  try {
    const started = Date.now();
    const paths = await ensureTools(names.length ? names : undefined);
    for (const [name, path] of Object.entries(paths)) process.stdout.write(`${name}=${path}\n`);
    log(`tools ready in ${((Date.now() - started) / 1000).toFixed(1)}s (cache: ${toolCacheDir()})`);
  } catch (error) {
    log(error instanceof ToolUnavailableError ? error.message : (error?.stack ?? String(error)));
    process.exit(1);
  }
}
