import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { keysRotate, resolveSettings } from '../src/cli/keys-rotate';

/** Runs against the tests' emulator (global setup), on parameters of its own so other suites' keys are untouched. */
describe('npm run keys:rotate', () => {
  const params = {
    JWT_SIGNING_KEY_PARAM: `/scs-test/keys-rotate-${Date.now()}/signing`,
    JWT_PUBLIC_KEYS_PARAM: `/scs-test/keys-rotate-${Date.now()}/public`,
  };
  const run = async (argv: string[]) => {
    let out = '';
    let err = '';
    const env: NodeJS.ProcessEnv = { ...process.env, ...params };
    const code = await keysRotate(argv, env, { write: (t) => void (out += t) }, { write: (t) => void (err += t) });
    return { code, out, err };
  };

  it('rotates: prints the new kid and the ones still trusted, never key material', async () => {
    const first = await run(['--local']);
    expect(first).toMatchObject({ code: 0, err: '' });
    const kid1 = /New signing key: (\S+)/.exec(first.out)?.[1];
    expect(kid1).toMatch(/^\d{8}-[0-9a-f]{12}$/);
    expect(first.out).toContain('No earlier public key was published.');

    const second = await run(['--local']);
    expect(second.code).toBe(0);
    const kid2 = /New signing key: (\S+)/.exec(second.out)?.[1];
    expect(kid2).not.toBe(kid1);
    expect(second.out).toContain(`Still trusted until the tokens they signed expire: ${kid1}`);

    for (const text of [first.out, second.out]) {
      expect(text).not.toMatch(/PRIVATE KEY|"d"\s*:|BEGIN/);
    }

    const ssm = new SSMClient({ endpoint: process.env.AWS_ENDPOINT_URL, region: 'us-east-1' });
    try {
      const published = await ssm.send(new GetParameterCommand({ Name: params.JWT_PUBLIC_KEYS_PARAM }));
      const kids = (JSON.parse(published.Parameter?.Value ?? '{}') as { keys: { kid: string }[] }).keys.map((k) => k.kid);
      expect(kids).toEqual([kid2, kid1]);
      const signing = await ssm.send(new GetParameterCommand({ Name: params.JWT_SIGNING_KEY_PARAM }));
      expect(signing.Parameter?.Type).toBe('SecureString');
    } finally {
      ssm.destroy();
    }
  });

  it('targets the local emulator only with --local, and only when AWS_ENDPOINT_URL is unset', () => {
    expect(resolveSettings([], {}).config.AWS_ENDPOINT_URL).toBeUndefined();
    expect(resolveSettings([], {}).local).toBe(false);

    const local: NodeJS.ProcessEnv = { AWS_REGION: 'eu-west-1' };
    expect(resolveSettings(['--local'], local).config).toMatchObject({ AWS_ENDPOINT_URL: 'http://127.0.0.1:4566', AWS_REGION: 'us-east-1' });
    expect(local).toMatchObject({ AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' });

    expect(resolveSettings(['--local'], { EMULATOR_PORT: '14566' }).config.AWS_ENDPOINT_URL).toBe('http://127.0.0.1:14566');
    expect(resolveSettings(['--local'], { AWS_ENDPOINT_URL: 'http://127.0.0.1:9999' }).config.AWS_ENDPOINT_URL).toBe('http://127.0.0.1:9999');
  });

  it('explains itself and refuses unknown arguments', async () => {
    expect(await run(['--help'])).toMatchObject({ code: 0, out: expect.stringContaining('--local') });
    const bad = await run(['--locl']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('unknown argument --locl');
  });

  it('says the local stack is not running when the emulator does not answer', async () => {
    const env: NodeJS.ProcessEnv = { ...params, EMULATOR_PORT: '1', AWS_MAX_ATTEMPTS: '1' };
    let err = '';
    const code = await keysRotate(['--local'], env, { write: () => {} }, { write: (t) => void (err += t) });
    expect(code).toBe(1);
    expect(err).toContain('npm start');
  });
});
