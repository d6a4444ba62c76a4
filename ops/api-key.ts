// `npm run api-key -- NAME ROLE`: makes a new API key for a service or an operator. Prints the key
// (give it to the caller, once; it is not stored anywhere) and the AUTH_API_KEYS entry holding only
// its SHA-256 (put it in the ingress's Secret). Rotation: add the new entry beside the old one,
// move the caller to the new key, then remove the old entry.
import { createHash, randomBytes } from 'node:crypto';

const [name, role] = process.argv.slice(2);
if (!name || !/^[\w.-]{1,64}$/.test(name) || (role !== 'operator' && role !== 'service')) {
  process.stderr.write(
    'usage: npm run api-key -- NAME ROLE\n' +
      '  NAME  who holds the key (letters, digits, . _ -), e.g. storefront or ops-oncall\n' +
      '  ROLE  service (orders for any customer, reads and cancels any order) or operator (also approves)\n',
  );
  process.exit(2);
}
const key = `osk_${randomBytes(32).toString('base64url')}`;
const entry = `${name}:${role}:${createHash('sha256').update(key).digest('hex')}`;
process.stdout.write(
  [
    `API key for ${name} (${role}); give it to the caller, it is shown only now:`,
    `  ${key}`,
    'Add this entry to AUTH_API_KEYS (comma-separated with the others) in the ingress Secret:',
    `  ${entry}`,
    'The caller sends it as the header "X-Api-Key: <key>".',
    '',
  ].join('\n'),
);
