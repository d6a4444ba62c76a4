// npm run api-key: a new key, and the AUTH_API_KEYS entry that holds only its SHA-256.
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.js';

const run = promisify(execFile);
const command = (...args: string[]) => run(process.execPath, ['--import', 'tsx', 'ops/api-key.ts', ...args]);

describe('npm run api-key', () => {
  it('when asked for a key, then it prints a fresh key and an entry the ingress accepts, holding only its hash', async () => {
    const first = (await command('storefront', 'service')).stdout;
    const second = (await command('storefront', 'service')).stdout;
    const key = /^ {2}(osk_\S+)$/m.exec(first)![1]!;
    const entry = /^ {2}(storefront:service:[\da-f]{64})$/m.exec(first)![1]!;
    expect(entry.endsWith(createHash('sha256').update(key).digest('hex'))).toBe(true);
    expect(entry).not.toContain(key);
    expect(second).not.toContain(key);
    const config = loadConfig({ AUTH_API_KEYS: entry }, { ingress: true });
    expect(config.auth.apiKeys).toEqual([{ name: 'storefront', role: 'service', sha256: entry.split(':')[2] }]);
  });

  it('when the role is not operator or service, then it exits 2 with the usage', async () => {
    const failed = await command('someone', 'admin').catch((error: { code: number; stderr: string }) => error);
    expect(failed).toMatchObject({ code: 2 });
    expect((failed as { stderr: string }).stderr).toContain('usage: npm run api-key -- NAME ROLE');
  });
});
