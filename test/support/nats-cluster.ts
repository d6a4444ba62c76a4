// A three-node NATS JetStream cluster on loopback, for tests of the scaled-out topology: routes
// between the nodes, data on disk per node, each node killable and restartable on its own port
// and data. Ready once the cluster has elected its JetStream meta leader.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { inject } from 'vitest';
import { freePort, startNats, stopProcess, waitFor } from '../../scripts/local-servers.mjs';
import { recordPid, type ChaosProcess } from './processes.js';

/** One node of the cluster: killable, freezable and restartable like any chaos-tier process. */
export interface NatsNode extends ChaosProcess {
  url: string;
  monitorUrl: string;
}

export interface NatsCluster {
  nodes: NatsNode[];
  urls: string[];
  close(): Promise<void>;
}

export async function startNatsCluster(name: string, size = 3): Promise<NatsCluster> {
  const dataDir = mkdtempSync(join(tmpdir(), `order-saga-${name}-cluster-`));
  const ports = await Promise.all(
    Array.from({ length: size }, async () => ({
      client: await freePort(),
      route: await freePort(),
      monitor: await freePort(),
    })),
  );
  const launch = async (index: number): Promise<ChildProcess> => {
    const own = ports[index]!;
    const server = await startNats({
      binary: inject('natsBinary'),
      port: own.client,
      monitorPort: own.monitor,
      dataDir: join(dataDir, `node-${index + 1}`),
      cluster: {
        name: `order-saga-${name}`,
        port: own.route,
        routes: ports.filter((p) => p !== own).map((p) => p.route),
      },
    });
    recordPid(server.process.pid);
    return server.process;
  };
  const children = await Promise.all(ports.map((_, index) => launch(index)));
  const nodes = ports.map((own, index): NatsNode => {
    const current = () => children[index]!;
    return {
      // The server_name startNats gives it: what JetStream reports as a stream's leader.
      name: `order-saga-${own.client}`,
      url: `nats://127.0.0.1:${own.client}`,
      monitorUrl: `http://127.0.0.1:${own.monitor}`,
      async kill() {
        const child = current();
        const exited = new Promise((resolve) => child.once('exit', resolve));
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await exited;
      },
      async start() {
        children[index] = await launch(index);
      },
      freeze: () => current().kill('SIGSTOP'),
      thaw: () => current().kill('SIGCONT'),
      async stop() {
        current().kill('SIGCONT');
        await stopProcess(current());
      },
    };
  });
  await waitFor(
    `NATS cluster ${name}: a JetStream meta leader`,
    async () => {
      const jsz = (await (await fetch(`${nodes[0]!.monitorUrl}/jsz`)).json()) as { meta_cluster?: { leader?: string } };
      return Boolean(jsz.meta_cluster?.leader);
    },
    { timeoutMs: 30_000 },
  );
  return {
    nodes,
    urls: nodes.map((n) => n.url),
    async close() {
      await Promise.all(nodes.map((n) => n.stop()));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
