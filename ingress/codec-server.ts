// The payload codec server (Temporal's remote codec protocol): the Temporal Web UI and the
// `temporal` CLI (--codec-endpoint) send it encrypted payloads and get them back readable, so
// operators see orders in clear while Temporal stores ciphertext. It decrypts, so it is an
// operator's tool: every request is authenticated like the API (bearer JWT or X-Api-Key) and must
// be an operator's; browsers may call it from the origins in CODEC_CORS_ORIGINS only.
//   POST /decode, POST /encode   {"payloads": [{"metadata": {name: base64}, "data": base64}]}
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payload } from '@temporalio/common';
import type { Logger } from '../lib/logger.js';
import { EncryptionCodec, Keyring } from '../lib/encryption.js';
import { IdentityProviderUnavailable, Unauthenticated, type Authenticator } from './callers.js';

const MAX_BODY_BYTES = 4 * 1024 * 1024;

interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

export interface CodecServerOptions {
  port: number;
  keys: { id: string; key: Buffer }[];
  codecCorsOrigins: string[];
  authenticator: Authenticator;
  logger: Logger;
}

export async function startCodecServer(
  options: CodecServerOptions,
): Promise<{ port: number; server: Server; close: () => Promise<void> }> {
  const codec = new EncryptionCodec(new Keyring(options.keys));
  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      options.logger.error({ err: error }, 'codec request failed');
      if (!res.headersSent) answer(res, 500, { error: 'the payloads could not be processed' });
    });
  });

  function corsHeaders(req: IncomingMessage): Record<string, string> {
    const origin = req.headers.origin;
    if (!origin || !options.codecCorsOrigins.includes(origin)) return {};
    return {
      'access-control-allow-origin': origin,
      'access-control-allow-credentials': 'true',
      'access-control-allow-methods': 'POST, OPTIONS',
      'access-control-allow-headers': 'content-type, x-namespace, authorization, x-api-key',
      vary: 'Origin',
    };
  }

  function answer(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const cors = corsHeaders(req);
    if (req.method === 'OPTIONS')
      return void res.writeHead(cors['access-control-allow-origin'] ? 204 : 403, cors).end();
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'POST' || (path !== '/decode' && path !== '/encode')) {
      return answer(res, 404, { error: 'the codec server answers POST /decode and POST /encode' }, cors);
    }
    try {
      const caller = await options.authenticator.authenticate((name) => {
        const value = req.headers[name.toLowerCase()];
        return Array.isArray(value) ? value[0] : value;
      });
      if (caller.role !== 'operator') {
        return answer(res, 403, { error: `decoding payloads is for operators; you are a ${caller.role}` }, cors);
      }
    } catch (error) {
      if (error instanceof Unauthenticated) {
        return answer(
          res,
          401,
          { error: error.message },
          {
            ...cors,
            'www-authenticate': options.authenticator.challenge(error.credentialsRefused),
          },
        );
      }
      if (error instanceof IdentityProviderUnavailable) return answer(res, 503, { error: error.message }, cors);
      throw error;
    }
    let body: { payloads?: JsonPayload[] };
    try {
      body = JSON.parse(await readBody(req)) as { payloads?: JsonPayload[] };
      if (!Array.isArray(body.payloads)) throw new Error('no payloads array');
    } catch (error) {
      return answer(res, 400, { error: `expected {"payloads": [...]}: ${(error as Error).message}` }, cors);
    }
    const payloads = body.payloads.map(fromJson);
    const result = path === '/decode' ? await codec.decode(payloads) : await codec.encode(payloads);
    answer(res, 200, { payloads: result.map(toJson) }, cors);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, resolve);
  });
  const port = (server.address() as AddressInfo).port;
  options.logger.info({ port }, 'payload codec server listening');
  return {
    port,
    server,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new Error(`body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function fromJson(payload: JsonPayload): Payload {
  return {
    metadata: Object.fromEntries(
      Object.entries(payload.metadata ?? {}).map(([name, value]) => [name, Buffer.from(value, 'base64')]),
    ),
    data: Buffer.from(payload.data ?? '', 'base64'),
  };
}

function toJson(payload: Payload): JsonPayload {
  return {
    metadata: Object.fromEntries(
      Object.entries(payload.metadata ?? {}).map(([name, value]) => [name, Buffer.from(value).toString('base64')]),
    ),
    data: Buffer.from(payload.data ?? new Uint8Array()).toString('base64'),
  };
}
