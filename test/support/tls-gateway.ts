// A mutual-TLS gateway in front of a plaintext server, as a deployment's Temporal frontend (or its
// TLS-terminating load balancer) is: it speaks TLS 1.2+ with HTTP/2 negotiated (gRPC), demands a
// client certificate signed by the CA it is given, and forwards the decrypted stream. The Temporal
// dev server has no TLS settings of its own, so the test puts this real TLS endpoint in front of it.
import { connect } from 'node:net';
import { readFileSync } from 'node:fs';
import { createServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { CertificateFiles } from './certificates.js';

export interface TlsGateway {
  address: string;
  /** Why handshakes failed, in order (e.g. the client sent no certificate). */
  refusals: string[];
  /** Connections that completed the handshake with a trusted client certificate. */
  accepted(): number;
  close(): Promise<void>;
}

export async function startTlsGateway(target: string, certificates: CertificateFiles): Promise<TlsGateway> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const refusals: string[] = [];
  let accepted = 0;
  const open = new Set<{ destroy(): void }>();
  const server = createServer(
    {
      key: readFileSync(certificates.serverKey),
      cert: readFileSync(certificates.serverCert),
      ca: readFileSync(certificates.ca),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
      minVersion: 'TLSv1.2',
    },
    (client: TLSSocket) => {
      accepted += 1;
      const upstream = connect({ host, port });
      for (const socket of [client, upstream]) {
        open.add(socket);
        socket.once('close', () => open.delete(socket));
      }
      client.pipe(upstream).pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    },
  );
  server.on('tlsClientError', (error) => refusals.push(error.message));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    refusals,
    accepted: () => accepted,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of open) socket.destroy();
      }),
  };
}
