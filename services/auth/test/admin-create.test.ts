import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { createAwsClients, loadConfig } from '@scs/common';
import { adminCreate, readAll } from '../src/admin-create';
import { AuthConfig } from '../src/config';

/** Runs against the tests' emulator (global setup): the users table and signing key it provisioned. */
describe('npm run admin:create', () => {
  const names = loadConfig(AuthConfig, process.env);
  const run = async (argv: string[], opts: { stdin?: string; env?: NodeJS.ProcessEnv } = {}) => {
    let out = '';
    let err = '';
    const env: NodeJS.ProcessEnv = { ...process.env, ARGON2_MEMORY_KIB: '19456', ...opts.env };
    delete env.SCS_ADMIN_PASSWORD;
    Object.assign(env, opts.env);
    const code = await adminCreate(argv, env, async () => opts.stdin ?? '', { write: (t) => void (out += t) }, { write: (t) => void (err += t) });
    return { code, out, err };
  };
  const stored = async (username: string) => {
    const aws = createAwsClients({ AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL: process.env.AWS_ENDPOINT_URL, AWS_MAX_ATTEMPTS: 3, AWS_REQUEST_TIMEOUT_MS: 10_000 });
    try {
      return (await aws.dynamo.send(new GetCommand({ TableName: names.USERS_TABLE, Key: { username } }))).Item;
    } finally {
      aws.destroy();
    }
  };

  it('creates the admin with the password from standard input, then re-keys it from SCS_ADMIN_PASSWORD; prints no password', async () => {
    const username = `ops-${Date.now()}`;
    const first = await run([username, '--local'], { stdin: 'a long operator pass phrase\n' });
    expect(first).toMatchObject({ code: 0, err: '' });
    expect(first.out).toMatch(/: created\n$/);
    const created = await stored(username);
    expect(created).toMatchObject({ username, role: 'admin', passwordHash: expect.stringMatching(/^\$argon2id\$/) });

    const second = await run([username, '--local'], { env: { SCS_ADMIN_PASSWORD: 'another long operator phrase' } });
    expect(second).toMatchObject({ code: 0, err: '' });
    expect(second.out).toMatch(/: password changed\n$/);
    expect((await stored(username))?.passwordHash).not.toBe(created?.passwordHash);
    for (const text of [first.out, second.out]) expect(text).not.toMatch(/pass phrase|operator phrase/);
  });

  it('refuses a missing or weak password, a missing username and unknown arguments (exit 2), writing nothing', async () => {
    const username = `ops-refused-${Date.now()}`;
    expect(await run([username, '--local'])).toMatchObject({ code: 2, err: expect.stringContaining('no password') });
    expect(await run([username, '--local'], { stdin: 'short\n' })).toMatchObject({ code: 2 });
    expect(await run(['--local'], { stdin: 'a long operator pass phrase' })).toMatchObject({ code: 2, err: expect.stringContaining('one username') });
    expect(await run([username, '--local', '--force'], { stdin: 'a long operator pass phrase' })).toMatchObject({ code: 2, err: expect.stringContaining('--force') });
    expect(await stored(username)).toBeUndefined();
  });

  it('explains itself, and reads a piped password whole', async () => {
    expect(await run(['--help'])).toMatchObject({ code: 0, out: expect.stringContaining('SCS_ADMIN_PASSWORD') });
    async function* chunks() {
      yield Buffer.from('a long ');
      yield 'pass phrase\n';
    }
    expect(await readAll(chunks())).toBe('a long pass phrase\n');
  });
});
