// Encryption at rest of what the service stores in Temporal and JetStream: AES-256-GCM with keys
// named by id (PAYLOAD_ENCRYPTION_KEYS). The first key encrypts; every key decrypts, so a key is
// rotated by putting a new one first and keeping the old one until nothing encrypted with it is
// kept any more (closed sagas past the namespace retention, events past the streams' max age).
//
// Two uses:
// - PayloadCodec: every Temporal payload (workflow and activity inputs and results, signals,
//   queries, updates) of the worker and of every client, so histories hold ciphertext and the Web
//   UI shows plaintext only through the codec server;
// - sealed text: the payment token inside the OrderCreated event, so ORDERS and ORDERS_DLQ never
//   hold it in clear; only the payment activity opens it.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import proto from '@temporalio/proto';

const { Payload: PayloadMessage } = proto.temporal.api.common.v1;

const IV_BYTES = 12;
const TAG_BYTES = 16;

/** The metadata of an encrypted payload: the standard encoding name, and which key encrypted it. */
export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';

const SEALED_PREFIX = 'sealed:v1:';

/** What a process says at start when it has no key. */
export const PAYLOADS_IN_CLEAR_WARNING =
  'PAYLOAD_ENCRYPTION_KEYS is not set: payment tokens and order data are stored in clear in Temporal and JetStream';

/** A payload or text encrypted with a key this process does not have. */
export class UnknownEncryptionKeyError extends Error {
  constructor(readonly keyId: string) {
    super(
      `data is encrypted with key "${keyId}", which PAYLOAD_ENCRYPTION_KEYS does not hold; ` +
        'add that key (keep old keys listed after the current one until their data has expired)',
    );
    this.name = 'UnknownEncryptionKeyError';
  }
}

export class Keyring {
  private readonly byId: Map<string, Buffer>;

  /** `keys`: the key to encrypt with first; each key is 32 bytes. */
  constructor(private readonly keys: readonly { id: string; key: Buffer }[]) {
    for (const { id, key } of keys) {
      if (key.length !== 32) throw new Error(`encryption key "${id}" has ${key.length} bytes; AES-256 needs 32`);
    }
    this.byId = new Map(keys.map(({ id, key }) => [id, key]));
  }

  /** False when no key is configured: nothing is encrypted (a local stack may run so). */
  get enabled(): boolean {
    return this.keys.length > 0;
  }

  /** iv ‖ ciphertext ‖ tag, with the current key; `aad` binds the ciphertext to its context. */
  encrypt(plaintext: Uint8Array, aad: string): { keyId: string; sealed: Buffer } {
    const { id, key } = this.keys[0]!;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(Buffer.from(aad));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return { keyId: id, sealed: Buffer.concat([iv, ciphertext, cipher.getAuthTag()]) };
  }

  decrypt(keyId: string, sealed: Uint8Array, aad: string): Buffer {
    const key = this.byId.get(keyId);
    if (!key) throw new UnknownEncryptionKeyError(keyId);
    const bytes = Buffer.from(sealed);
    const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, IV_BYTES)).setAAD(Buffer.from(aad));
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
    return Buffer.concat([decipher.update(bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES)), decipher.final()]);
  }

  /** `sealed:v1:<key id>:<base64>`, or the text itself when no key is configured. */
  seal(text: string, purpose: string): string {
    if (!this.enabled) return text;
    const { keyId, sealed } = this.encrypt(Buffer.from(text, 'utf8'), purpose);
    return `${SEALED_PREFIX}${keyId}:${sealed.toString('base64')}`;
  }

  /** The text inside `seal`'s output; text that was never sealed (no key at the time) is returned as it is. */
  open(text: string, purpose: string): string {
    if (!text.startsWith(SEALED_PREFIX)) return text;
    const rest = text.slice(SEALED_PREFIX.length);
    const at = rest.indexOf(':');
    return this.decrypt(rest.slice(0, at), Buffer.from(rest.slice(at + 1), 'base64'), purpose).toString('utf8');
  }
}

/** What a sealed payment token is bound to, so it cannot be passed off as another kind of secret. */
export const PAYMENT_TOKEN_PURPOSE = 'order-saga/payment-token';

const PAYLOAD_PURPOSE = 'order-saga/temporal-payload';

/** Temporal payload codec: each payload (proto-encoded) encrypted whole with the keyring's current key. */
export class EncryptionCodec implements PayloadCodec {
  constructor(private readonly keyring: Keyring) {}

  encode(payloads: Payload[]): Promise<Payload[]> {
    if (!this.keyring.enabled) return Promise.resolve(payloads);
    return Promise.resolve(
      payloads.map((payload) => {
        const { keyId, sealed } = this.keyring.encrypt(PayloadMessage.encode(payload).finish(), PAYLOAD_PURPOSE);
        return {
          metadata: { encoding: Buffer.from(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: Buffer.from(keyId) },
          data: sealed,
        };
      }),
    );
  }

  decode(payloads: Payload[]): Promise<Payload[]> {
    // A decode that throws (unknown key, tampered data) rejects: the payload never passes as plaintext.
    return new Promise((resolve) =>
      resolve(
        payloads.map((payload) => {
          if (Buffer.from(payload.metadata?.encoding ?? []).toString() !== ENCRYPTED_ENCODING) return payload;
          const keyId = Buffer.from(payload.metadata?.[KEY_ID_METADATA] ?? []).toString();
          const plaintext = this.keyring.decrypt(keyId, payload.data ?? new Uint8Array(), PAYLOAD_PURPOSE);
          return PayloadMessage.decode(plaintext);
        }),
      ),
    );
  }
}
