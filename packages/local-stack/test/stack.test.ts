import { createServer, type Server } from 'node:net';
import { PassThrough } from 'node:stream';
import { freePort } from '../src/emulator';
import { ManagedChild } from '../src/stack/child';
import { StackOutput } from '../src/stack/output';
import { assertPortsFree, isPortFree } from '../src/stack/ports';

const listen = (port: number) =>
  new Promise<Server>((resolve) => {
    const server = createServer();
    server.listen(port, '127.0.0.1', () => resolve(server));
  });

describe('stack runner: ports', () => {
  it('refuses a taken port, naming the setting that moves it', async () => {
    const port = await freePort();
    const server = await listen(port);
    try {
      expect(await isPortFree(port, '127.0.0.1')).toBe(false);
      await expect(assertPortsFree([{ what: 'AWS emulator', knob: 'EMULATOR_PORT', port, host: '127.0.0.1' }])).rejects.toThrow(
        `Port ${port} (AWS emulator) is already in use on 127.0.0.1: is another "npm start" running? Stop it, or choose another port with EMULATOR_PORT=<port>.`,
      );
    } finally {
      server.close();
    }
    expect(await isPortFree(port, '127.0.0.1')).toBe(true);
  });

  it('refuses two settings with the same port', async () => {
    const port = await freePort();
    await expect(
      assertPortsFree([
        { what: 'auth service', knob: 'AUTH_PORT', port, host: '127.0.0.1' },
        { what: 'gateway', knob: 'GATEWAY_PORT', port, host: '127.0.0.1' },
      ]),
    ).rejects.toThrow(`GATEWAY_PORT and AUTH_PORT are both ${port}`);
  });
});

describe('stack runner: output', () => {
  const capture = (opts: { emulatorRequests: boolean }) => {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const out = new StackOutput({ pretty: false, stdout, stderr, ...opts });
    const read = (s: PassThrough) => (s.read() as Buffer | null)?.toString() ?? '';
    return { out, stdout: () => read(stdout), stderr: () => read(stderr) };
  };

  it("prefixes every child line with the child's name, stderr to stderr", () => {
    const { out, stdout, stderr } = capture({ emulatorRequests: false });
    out.sink('auth', '{"level":30,"msg":"Server listening"}', 'stdout');
    out.sink('backup-sync', 'boom', 'stderr');
    expect(stdout()).toBe('auth        | {"level":30,"msg":"Server listening"}\n');
    expect(stderr()).toBe('backup-sync | boom\n');
  });

  it("hides the emulator's per-request access log unless asked", () => {
    const request = '127.0.0.1 - - [22/Nov/2026 07:53:19] "GET /moto-api/data.json HTTP/1.1" 200 -';
    const quiet = capture({ emulatorRequests: false });
    quiet.out.sink('emulator', request, 'stderr');
    quiet.out.sink('emulator', ' * Running on http://127.0.0.1:4566', 'stderr');
    expect(quiet.stderr()).toBe('emulator    |  * Running on http://127.0.0.1:4566\n');

    const verbose = capture({ emulatorRequests: true });
    verbose.out.sink('emulator', request, 'stderr');
    expect(verbose.stderr()).toBe(`emulator    | ${request}\n`);
  });
});

describe('stack runner: child processes', () => {
  const node = (name: string, script: string, sink = jest.fn()) =>
    new ManagedChild({ name, command: process.execPath, args: ['-e', script], env: process.env, cwd: __dirname }, sink);

  it('passes output line by line and reports the exit', async () => {
    const sink = jest.fn();
    const child = node('demo', 'process.stdout.write("one\\ntwo\\n"); process.stderr.write("three\\n"); process.exit(3)', sink);
    expect(await child.exited).toEqual({ code: 3, signal: null });
    expect(child.running).toBe(false);
    await new Promise((r) => setImmediate(r));
    expect(sink.mock.calls).toEqual(
      expect.arrayContaining([
        ['demo', 'one', 'stdout'],
        ['demo', 'two', 'stdout'],
        ['demo', 'three', 'stderr'],
      ]),
    );
  });

  it('stops with SIGTERM when the process listens to it', async () => {
    const child = node('polite', 'process.on("SIGTERM", () => process.exit(0)); console.log("up"); setInterval(() => {}, 1000)');
    await new Promise((r) => setTimeout(r, 300));
    expect(await child.stop(5_000)).toEqual({ code: 0, signal: null });
  });

  it('kills with SIGKILL after the grace period when SIGTERM is ignored', async () => {
    const sink = jest.fn();
    const child = node('stubborn', 'process.on("SIGTERM", () => {}); console.log("up"); setInterval(() => {}, 1000)', sink);
    // Wait until it has installed its handler (it says "up").
    while (!sink.mock.calls.some(([, line]) => line === 'up')) await new Promise((r) => setTimeout(r, 20));
    const started = Date.now();
    expect(await child.stop(300)).toEqual({ code: null, signal: 'SIGKILL' });
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('reports a command that cannot be started', async () => {
    const child = new ManagedChild({ name: 'missing', command: '/nonexistent/binary', args: [], env: process.env, cwd: __dirname }, jest.fn());
    const exit = await child.exited;
    expect(exit.error?.message).toMatch(/ENOENT/);
  });
});
