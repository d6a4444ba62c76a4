// A nats-server of a test file's own, for tests that stop NATS or run the starter (whose durable
// consumer must not see other files' events). Data in a temporary folder, removed by close().
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import { freePort, startNats, stopProcess } from '../../scripts/local-servers.mjs';

export interface PrivateNats {
  url: string;
  /** Stops the server (SIGTERM); its JetStream data stays for restart(). */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same data. */
  restart(): Promise<void>;
  /** Stops it and deletes its data. */
  close(): Promise<void>;
}

export async function startPrivateNats(name: string): Promise<PrivateNats> {
  const dataDir = mkdtempSync(join(tmpdir(), `order-saga-${name}-nats-`));
  const port = await freePort();
  const launch = () => startNats({ binary: inject('natsBinary'), port, dataDir });
  let server = await launch();
  return {
    url: server.url,
    stop: () => stopProcess(server.process),
    async restart() {
      server = await launch();
    },
    async close() {
      await stopProcess(server.process);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
