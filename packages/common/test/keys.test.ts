import { createAwsClients, PublicKeyStore, readPublicKeys, readSigningKey, rotateSigningKey } from '../src';

const aws = createAwsClients({
  AWS_REGION: 'us-east-1',
  AWS_ENDPOINT_URL: process.env.AWS_ENDPOINT_URL,
  AWS_MAX_ATTEMPTS: 2,
  AWS_REQUEST_TIMEOUT_MS: 5_000,
});
afterAll(() => aws.destroy());

const unique = `/scs-test/${Date.now()}-${Math.random().toString(36).slice(2)}`;
const params = { signingKeyParam: `${unique}/signing`, publicKeysParam: `${unique}/public` };

describe('signing key rotation in SSM', () => {
  it('publishes the new public key, keeps the previous one until it retires, stores the private key encrypted', async () => {
    const first = await rotateSigningKey(aws.ssm, params, { kmsKeyId: 'alias/scs-secrets', retainSeconds: 1200 });
    const second = await rotateSigningKey(aws.ssm, params, { kmsKeyId: 'alias/scs-secrets', retainSeconds: 1200 });
    expect(second.retained).toEqual([first.kid]);

    const published = await readPublicKeys(aws.ssm, params.publicKeysParam);
    expect(published.map((k) => k.kid)).toEqual([second.kid, first.kid]);
    expect(published[0]?.retireAt).toBeUndefined();
    expect(Date.parse(published[1]?.retireAt ?? '')).toBeGreaterThan(Date.now());
    expect(JSON.stringify(published)).not.toMatch(/"d"|PRIVATE/);

    // The new key signs only once every verifier can have loaded its public half.
    expect((await readSigningKey(aws.ssm, params.signingKeyParam))?.kid).toBe(first.kid);
    expect((await readSigningKey(aws.ssm, params.signingKeyParam, Date.parse(second.activateAt)))?.kid).toBe(second.kid);
  });

  it('prunes keys whose retirement has passed', async () => {
    const p = { signingKeyParam: `${unique}/s2`, publicKeysParam: `${unique}/p2` };
    const old = await rotateSigningKey(aws.ssm, p, { kmsKeyId: 'alias/scs-secrets', retainSeconds: 1 });
    await rotateSigningKey(aws.ssm, p, { kmsKeyId: 'alias/scs-secrets', retainSeconds: 1 });
    const later = new Date(Date.now() + 5_000);
    const third = await rotateSigningKey(aws.ssm, p, { kmsKeyId: 'alias/scs-secrets', retainSeconds: 1, now: later });
    expect(third.retained).not.toContain(old.kid);
  });

  it('the key store trusts current keys, refuses unknown and retired kids, and serves only public parts', async () => {
    const store = new PublicKeyStore(aws.ssm, params.publicKeysParam, 60_000);
    await store.load();
    const published = await readPublicKeys(aws.ssm, params.publicKeysParam);
    expect(await store.resolve(published[0]?.kid)).toBeDefined();
    expect(await store.resolve('no-such-kid')).toBeUndefined();
    expect(await store.resolve(published[1]?.kid, Date.parse(published[1]?.retireAt ?? '') + 1)).toBeUndefined();
    const jwks = store.jwks();
    expect(jwks.keys).toHaveLength(2);
    for (const k of jwks.keys) expect(Object.keys(k).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
  });
});
