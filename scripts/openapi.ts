// `npm run openapi`: writes docs/openapi.json, the HTTP API's OpenAPI 3.1 document, from
// ingress/openapi.ts (its schemas made from the ingress's zod schemas). A test fails when the
// file differs from what this would write.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderOpenApi } from '../ingress/openapi.js';

export const OPENAPI_FILE = fileURLToPath(new URL('../docs/openapi.json', import.meta.url));

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(OPENAPI_FILE, renderOpenApi());
  console.log(`wrote ${OPENAPI_FILE}`);
}
