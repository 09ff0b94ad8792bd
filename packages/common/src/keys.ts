import {
  GetParameterCommand,
  ParameterType,
  PutParameterCommand,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject, randomBytes } from 'node:crypto';
import { isNotFound } from './aws';
import type { Logger } from './logger';

/** The one signing algorithm the product accepts (JW-01). */
export const JWT_ALGORITHM = 'ES256';

/** A published verification key: the public JWK, and when it stops being trusted (after rotation). */
export interface PublishedKey {
  kid: string;
  jwk: JsonWebKey;
  createdAt: string;
  /** Set when a newer key replaced this one: tokens it signed are accepted until then. */
  retireAt?: string;
}

interface PublicKeyDocument {
  keys: PublishedKey[];
}

interface StoredPrivateKey {
  kid: string;
  privateKeyPem: string;
  createdAt: string;
  /** Signers switch to this key only from then on, once every verifier can know its public half. */
  activateAt: string;
}

interface SigningKeyDocument {
  /** Newest first: the new key and, during a rotation, the one it replaces. */
  keys: StoredPrivateKey[];
}

/**
 * Verifiers refresh at most this often when they meet an unknown kid; signers wait twice as long
 * before using a new key, so no verifier can see a token whose key it could not have loaded.
 */
export const UNKNOWN_KID_REFRESH_GAP_MS = 5_000;
export const KEY_ACTIVATION_DELAY_SECONDS = (2 * UNKNOWN_KID_REFRESH_GAP_MS) / 1000;

/** A verification key as served in the JWKS document. */
export interface PublicJwk {
  kty: string;
  crv: string;
  x: string;
  y: string;
  kid: string;
  alg: string;
  use: string;
}

export interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  /** PEM form, as @fastify/jwt wants it for signing. */
  privateKeyPem: string;
  activateAt: number;
}

export interface KeyParams {
  signingKeyParam: string;
  publicKeysParam: string;
}

/** Reads the published verification keys; missing parameter = no keys yet. */
export async function readPublicKeys(ssm: SSMClient, publicKeysParam: string): Promise<PublishedKey[]> {
  try {
    const out = await ssm.send(new GetParameterCommand({ Name: publicKeysParam }));
    const doc = JSON.parse(out.Parameter?.Value ?? '{"keys":[]}') as PublicKeyDocument;
    return Array.isArray(doc.keys) ? doc.keys : [];
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
}

/** Reads and decrypts the signing keys (newest first); empty when none has been created yet. */
export async function readSigningKeys(ssm: SSMClient, signingKeyParam: string): Promise<SigningKey[]> {
  try {
    const out = await ssm.send(new GetParameterCommand({ Name: signingKeyParam, WithDecryption: true }));
    const doc = JSON.parse(out.Parameter?.Value ?? '') as SigningKeyDocument;
    return (doc.keys ?? []).map((k) => ({
      kid: k.kid,
      privateKey: createPrivateKey(k.privateKeyPem),
      privateKeyPem: k.privateKeyPem,
      activateAt: Date.parse(k.activateAt),
    }));
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
}

/** The key to sign with at `now`: the newest active one (or the oldest, before any is active). */
export function activeSigningKey(keys: SigningKey[], now = Date.now()): SigningKey | undefined {
  return keys.find((k) => k.activateAt <= now) ?? keys[keys.length - 1];
}

/** The signing key in use now, or undefined when none has been created yet. */
export async function readSigningKey(ssm: SSMClient, signingKeyParam: string, now = Date.now()): Promise<SigningKey | undefined> {
  return activeSigningKey(await readSigningKeys(ssm, signingKeyParam), now);
}

/**
 * Creates a new ES256 key pair and makes it the signing key. The new public key is published
 * *before* the private key is switched, so every verifier can already check the first token the
 * new key signs; the previous public keys stay trusted for `retainSeconds` (at least the access
 * token lifetime) and are pruned after that.
 */
export async function rotateSigningKey(
  ssm: SSMClient,
  params: KeyParams,
  opts: { kmsKeyId: string; retainSeconds: number; now?: Date; activationDelaySeconds?: number },
): Promise<{ kid: string; retained: string[]; activateAt: string }> {
  const now = opts.now ?? new Date();
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const kid = `${now.toISOString().slice(0, 10).replace(/-/g, '')}-${randomBytes(6).toString('hex')}`;
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid, alg: JWT_ALGORITHM, use: 'sig' };

  const retireAt = new Date(now.getTime() + opts.retainSeconds * 1000).toISOString();
  const previous = (await readPublicKeys(ssm, params.publicKeysParam))
    .filter((k) => !k.retireAt || Date.parse(k.retireAt) > now.getTime())
    .map((k) => ({ ...k, retireAt: k.retireAt ?? retireAt }));
  const doc: PublicKeyDocument = { keys: [{ kid, jwk, createdAt: now.toISOString() }, ...previous] };
  await ssm.send(
    new PutParameterCommand({
      Name: params.publicKeysParam,
      Type: ParameterType.STRING,
      Value: JSON.stringify(doc),
      Overwrite: true,
      Description: 'Public keys that verify access tokens (JWKS)',
    }),
  );

  const previousSigning = activeSigningKey(await readSigningKeys(ssm, params.signingKeyParam), now.getTime());
  const activateAt = new Date(now.getTime() + (opts.activationDelaySeconds ?? KEY_ACTIVATION_DELAY_SECONDS) * 1000);
  const signing: SigningKeyDocument = {
    keys: [
      {
        kid,
        privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
        createdAt: now.toISOString(),
        activateAt: previousSigning ? activateAt.toISOString() : now.toISOString(),
      },
      ...(previousSigning
        ? [
            {
              kid: previousSigning.kid,
              privateKeyPem: previousSigning.privateKeyPem,
              createdAt: now.toISOString(),
              activateAt: new Date(previousSigning.activateAt).toISOString(),
            },
          ]
        : []),
    ],
  };
  await ssm.send(
    new PutParameterCommand({
      Name: params.signingKeyParam,
      Type: ParameterType.SECURE_STRING,
      KeyId: opts.kmsKeyId,
      Value: JSON.stringify(signing),
      Overwrite: true,
      Description: 'Private key that signs access tokens',
    }),
  );
  return { kid, retained: previous.map((k) => k.kid), activateAt: signing.keys[0]?.activateAt ?? now.toISOString() };
}

/** Creates the first signing key when there is none; leaves an existing one alone. */
export async function ensureSigningKey(
  ssm: SSMClient,
  params: KeyParams,
  opts: { kmsKeyId: string; retainSeconds: number },
): Promise<{ created: boolean; kid: string }> {
  const existing = await readSigningKey(ssm, params.signingKeyParam);
  const published = await readPublicKeys(ssm, params.publicKeysParam);
  if (existing && published.some((k) => k.kid === existing.kid)) return { created: false, kid: existing.kid };
  const { kid } = await rotateSigningKey(ssm, params, opts);
  return { created: true, kid };
}

/**
 * Runs `task` every `ms` without keeping the process alive; a failure is logged and the previous
 * state kept. Returns the function that stops it.
 */
export function every(ms: number, task: () => Promise<void>, log: Pick<Logger, 'warn'> | undefined, failure: string): () => void {
  const timer = setInterval(() => {
    task().catch((err: unknown) => log?.warn({ err }, failure));
  }, ms);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * The verification keys a service trusts, loaded from SSM (configuration, never from a token's
 * header: JW-02) and refreshed periodically. An unknown `kid` triggers at most one early refresh
 * per interval, so a freshly rotated key is accepted at once while random kids cannot hammer SSM.
 */
export class PublicKeyStore {
  private keys = new Map<string, { key: KeyObject; pem: string; published: PublishedKey }>();
  private stopRefresh: (() => void) | undefined;
  private inflight: Promise<void> | undefined;
  private lastLoad = 0;

  constructor(
    private readonly ssm: SSMClient,
    private readonly publicKeysParam: string,
    private readonly refreshMs: number,
    private readonly log?: Pick<Logger, 'warn'>,
    private readonly now: () => number = Date.now,
    private readonly minRefreshGapMs = UNKNOWN_KID_REFRESH_GAP_MS,
  ) {}

  async load(): Promise<void> {
    this.inflight ??= (async () => {
      try {
        const published = await readPublicKeys(this.ssm, this.publicKeysParam);
        const next = new Map<string, { key: KeyObject; pem: string; published: PublishedKey }>();
        for (const p of published) {
          const key = createPublicKey({ key: p.jwk, format: 'jwk' });
          next.set(p.kid, { key, pem: key.export({ format: 'pem', type: 'spki' }).toString(), published: p });
        }
        this.keys = next;
        this.lastLoad = this.now();
      } finally {
        this.inflight = undefined;
      }
    })();
    return this.inflight;
  }

  /** Starts the periodic refresh; a failed refresh keeps the last good keys. */
  start(): void {
    this.stopRefresh = every(this.refreshMs, () => this.load(), this.log, 'refreshing the JWT public keys failed');
  }

  stop(): void {
    this.stopRefresh?.();
  }

  /** The key for a kid, if it is trusted now (a retired key is not). */
  async resolve(kid: string | undefined, now = this.now()): Promise<KeyObject | undefined> {
    return (await this.entry(kid, now))?.key;
  }

  /** The same, as SPKI PEM (what the JWT verifier takes), exported once per key, not per request. */
  async resolvePem(kid: string | undefined, now = this.now()): Promise<string | undefined> {
    return (await this.entry(kid, now))?.pem;
  }

  /**
   * The PEM of a key already loaded and trusted now, without waiting for anything (the common case
   * on every request); undefined for a kid not loaded yet (then `resolvePem` may refresh) or retired.
   */
  loadedPem(kid: string | undefined, now = this.now()): string | undefined {
    const entry = kid === undefined ? undefined : this.keys.get(kid);
    return entry && !this.retired(entry, now) ? entry.pem : undefined;
  }

  private retired(entry: { published: PublishedKey }, now: number): boolean {
    return entry.published.retireAt !== undefined && Date.parse(entry.published.retireAt) <= now;
  }

  private async entry(kid: string | undefined, now: number) {
    if (!kid || kid.length > 128) return undefined;
    if (!this.keys.has(kid) && now - this.lastLoad >= this.minRefreshGapMs) {
      await this.load().catch((err: unknown) => this.log?.warn({ err }, 'refreshing the JWT public keys failed'));
    }
    const entry = this.keys.get(kid);
    if (!entry || this.retired(entry, now)) return undefined;
    return entry;
  }

  /** The JWKS document: public parts only, trusted keys only. */
  jwks(now = this.now()): { keys: PublicJwk[] } {
    const keys: PublicJwk[] = [];
    for (const { published } of this.keys.values()) {
      if (published.retireAt && Date.parse(published.retireAt) <= now) continue;
      const { kty = 'EC', crv = 'P-256', x = '', y = '' } = published.jwk;
      keys.push({ kty, crv, x, y, kid: published.kid, alg: JWT_ALGORITHM, use: 'sig' });
    }
    return { keys };
  }

  get size(): number {
    return this.keys.size;
  }
}
