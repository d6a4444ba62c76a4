// The public HTTP server: a slow or half-open client cannot hold a connection. Headers must arrive
// within HTTP_HEADERS_TIMEOUT, the whole request (body included) within HTTP_REQUEST_TIMEOUT, and an
// idle keep-alive connection is closed after HTTP_KEEP_ALIVE_TIMEOUT. A request cut off by a
// timeout, or unreadable as HTTP, gets a problem+json answer and the connection is closed.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Config } from '../lib/config.js';

/** How often the server looks for requests past their deadline; bounds how late a 408 comes. */
const DEADLINE_CHECK_INTERVAL_MS = 500;

const CLIENT_ERRORS: Record<string, { status: number; title: string; detail: string }> = {
  ERR_HTTP_REQUEST_TIMEOUT: {
    status: 408,
    title: 'Request Timeout',
    detail: 'the request (headers and body) did not arrive in time; send it again, whole',
  },
  HPE_HEADER_OVERFLOW: {
    status: 431,
    title: 'Request Header Fields Too Large',
    detail: 'the request headers are too large; send fewer or shorter headers',
  },
};

export function createPublicServer(
  http: Config['http'],
  handle: (req: IncomingMessage, res: ServerResponse) => void,
): Server {
  const server = createServer(
    {
      headersTimeout: http.headersTimeoutMs,
      requestTimeout: http.requestTimeoutMs,
      connectionsCheckingInterval: DEADLINE_CHECK_INTERVAL_MS,
    },
    handle,
  );
  server.keepAliveTimeout = http.keepAliveTimeoutMs;
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => answerClientError(error, socket));
  return server;
}

function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  // Nothing was answered yet on this connection's current request: say why it ends.
  if (socket.writable && (socket as Duplex & { bytesWritten?: number }).bytesWritten === 0) {
    const known = CLIENT_ERRORS[error.code ?? ''] ?? {
      status: 400,
      title: 'Bad Request',
      detail: 'the request is not valid HTTP/1.1',
    };
    const body = JSON.stringify({ type: 'about:blank', ...known });
    socket.write(
      `HTTP/1.1 ${known.status} ${known.title}\r\nContent-Type: application/problem+json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
