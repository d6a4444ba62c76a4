// Certificates made by the test: a CA, a server certificate for localhost/127.0.0.1 and a client
// certificate, all signed by that CA (ECDSA P-256), written as PEM files to a temporary folder.
import { webcrypto } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as never);

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

export interface CertificateFiles {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate from a CA the servers do not trust. */
  strangerCert: string;
  strangerKey: string;
}

async function keyPair(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
}

async function privateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  const lines = pkcs8
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n');
  return `-----BEGIN PRIVATE KEY-----\n${lines}\n-----END PRIVATE KEY-----\n`;
}

async function certificateAuthority(name: string) {
  const keys = await keyPair();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: `CN=${name}`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { keys, certificate };
}

async function leaf(
  authority: Awaited<ReturnType<typeof certificateAuthority>>,
  serial: string,
  commonName: string,
  usage: 'server' | 'client',
  serverNames: readonly string[] = [],
) {
  const keys = await keyPair();
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: `CN=${commonName}`,
    issuer: authority.certificate.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    signingKey: authority.keys.privateKey,
    publicKey: keys.publicKey,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([
        usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth,
      ]),
      ...(usage === 'server'
        ? [
            new x509.SubjectAlternativeNameExtension(
              serverNames.map((name) => ({ type: /^\d+\.\d+\.\d+\.\d+$/.test(name) ? 'ip' : 'dns', value: name })),
            ),
          ]
        : []),
      await x509.AuthorityKeyIdentifierExtension.create(authority.keys.publicKey),
    ],
  });
  return { pem: certificate.toString('pem'), key: await privateKeyPem(keys.privateKey) };
}

/**
 * `serverNames`: the names the server certificate is valid for (default localhost and 127.0.0.1);
 * a name of its own makes a client that does not ask for it (its server-name setting) fail.
 */
export async function makeCertificates({
  serverNames = ['localhost', '127.0.0.1'],
}: { serverNames?: readonly string[] } = {}): Promise<CertificateFiles> {
  const dir = mkdtempSync(join(tmpdir(), 'order-saga-certs-'));
  const authority = await certificateAuthority('Order Saga Test CA');
  const stranger = await certificateAuthority('Someone Else CA');
  const server = await leaf(authority, '02', serverNames[0]!, 'server', serverNames);
  const client = await leaf(authority, '03', 'order-saga-worker', 'client');
  const strangerClient = await leaf(stranger, '04', 'order-saga-worker', 'client');
  const files = {
    ca: authority.certificate.toString('pem'),
    serverCert: server.pem,
    serverKey: server.key,
    clientCert: client.pem,
    clientKey: client.key,
    strangerCert: strangerClient.pem,
    strangerKey: strangerClient.key,
  };
  const paths = Object.fromEntries(
    Object.entries(files).map(([name, pem]) => {
      const path = join(dir, `${name}.pem`);
      writeFileSync(path, pem, { mode: 0o600 });
      return [name, path];
    }),
  ) as Omit<CertificateFiles, 'dir'>;
  return { dir, ...paths };
}
