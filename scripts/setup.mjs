// Set-up shared by `npm start` and `npm test`: install npm dependencies when they are
// missing or stale, then get the pinned tools. Plain Node, runs before node_modules exists.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Prints a phase header on stderr. */
export function step(message) {
  process.stderr.write(`\n\x1b[1m==> ${message}\x1b[0m\n`);
}

/**
 * Installs the locked dependencies when node_modules is missing or older than package-lock.json.
 * The committed lock file is the one `npm install` writes (npm 11, every platform's optional
 * binaries listed), so the install leaves it unchanged; CI (.ci/run) fails when it does not.
 * `npm install`, not `npm ci`: `npm ci` would delete node_modules on every lock change, under
 * whatever else runs from this tree. After adding a dependency, `rm -rf node_modules && npm
 * install` once: an install over an existing node_modules can drop other platforms' entries.
 */
export function ensureDependencies() {
  const installed = join(ROOT, 'node_modules', '.package-lock.json');
  const lock = join(ROOT, 'package-lock.json');
  if (existsSync(installed) && statSync(installed).mtimeMs >= statSync(lock).mtimeMs) return;
  step('Installing npm dependencies');
  const result = spawnSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: ROOT, stdio: 'inherit' });
  if (result.status !== 0) {
    process.stderr.write(
      'npm install failed (its error is above); if the registry was unreachable, run the command again.\n',
    );
    process.exit(result.status ?? 1);
  }
}

/** Installs dependencies, then resolves the named tools (all when none named) to paths. */
export async function setUp(toolNames) {
  ensureDependencies();
  step(`Getting the pinned tools (${toolNames?.join(', ') ?? 'all'})`);
  const { ensureTools } = await import('./toolchain.mjs');
  try {
    return await ensureTools(toolNames);
  } catch (error) {
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
}
