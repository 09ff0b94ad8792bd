import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { FaultProxy } from '../src/fault-proxy';

/** An echo server: every byte comes back; `received` counts what it got, `resets` the connections reset under it. */
async function echoServer(): Promise<{ server: Server; port: number; received: () => number; resets: () => number; close: () => Promise<void> }> {
  let received = 0;
  let resets = 0;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('data', (d: Buffer) => {
      received += d.length;
      socket.write(d);
    });
    socket.on('end', () => socket.end());
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET') resets += 1;
    });
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    server,
    port,
    received: () => received,
    resets: () => resets,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Sends `data` through a connection to `port`, half-closes, and collects what comes back (or the error that ended it). */
function roundTrip(port: number, data: Buffer): Promise<{ back: Buffer; error?: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    const socket = connect({ host: '127.0.0.1', port });
    socket.on('data', (d: Buffer) => parts.push(d));
    socket.on('error', (err: NodeJS.ErrnoException) => resolve({ back: Buffer.concat(parts), error: err.code ?? err.message, ms: performance.now() - started }));
    socket.on('end', () => resolve({ back: Buffer.concat(parts), ms: performance.now() - started }));
    socket.end(data);
  });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('fault proxy', () => {
  let echo: Awaited<ReturnType<typeof echoServer>>;
  let proxy: FaultProxy;

  beforeEach(async () => {
    echo = await echoServer();
    proxy = new FaultProxy({ host: '127.0.0.1', port: echo.port });
    await proxy.start();
  });

  afterEach(async () => {
    await proxy.stop();
    await echo.close();
  });

  it('without faults, passes bytes both ways unchanged and in order', async () => {
    const data = randomBytes(4 * 1024 * 1024);
    const { back, error } = await roundTrip(proxy.port, data);
    expect(error).toBeUndefined();
    expect(back.length).toBe(data.length);
    expect(sha(back)).toBe(sha(data));
    expect(proxy.stats.bytes).toBe(2 * data.length);
  });

  it('adds the latency to each direction (a round trip takes at least twice as long)', async () => {
    proxy.set({ latencyMs: 150 });
    const { back, ms } = await roundTrip(proxy.port, Buffer.from('ping'));
    expect(back.toString()).toBe('ping');
    expect(ms).toBeGreaterThanOrEqual(300);
  });

  it('caps the bandwidth, keeping the bytes intact', async () => {
    proxy.set({ bytesPerSecond: 512 * 1024 });
    const data = randomBytes(256 * 1024);
    const { back, ms } = await roundTrip(proxy.port, data);
    expect(sha(back)).toBe(sha(data));
    // 256 KiB at 512 KiB/s is half a second (the echo overlaps the two directions).
    expect(ms).toBeGreaterThanOrEqual(490);
  });

  it('resets a connection (both ends) once it carried more than resetAfterBytes; new connections are counted afresh', async () => {
    proxy.set({ resetAfterBytes: 64 * 1024 });
    const { error } = await roundTrip(proxy.port, randomBytes(1024 * 1024));
    expect(error).toBe('ECONNRESET');
    expect(proxy.stats.resets).toBe(1);
    expect(echo.received()).toBeLessThanOrEqual(64 * 1024);
    const small = await roundTrip(proxy.port, Buffer.from('still fine'));
    expect(small.back.toString()).toBe('still fine');
    proxy.clear();
    const big = await roundTrip(proxy.port, randomBytes(1024 * 1024));
    expect(big.error).toBeUndefined();
    expect(big.back.length).toBe(1024 * 1024);
  });

  it('stop: open connections are reset and new ones refused; start: the same port works again', async () => {
    const socket = connect({ host: '127.0.0.1', port: proxy.port });
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write('hello');
    await new Promise((resolve) => socket.once('data', resolve));
    const closed = new Promise<string | undefined>((resolve) => {
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code));
      socket.once('close', () => resolve(undefined));
    });
    const port = proxy.port;
    await proxy.stop();
    expect(await closed).toBe('ECONNRESET');
    expect((await roundTrip(port, Buffer.from('anyone?'))).error).toBe('ECONNREFUSED');
    await proxy.start();
    expect(proxy.port).toBe(port);
    expect((await roundTrip(port, Buffer.from('back'))).back.toString()).toBe('back');
  });

  it('a target that refuses connections resets the client connection', async () => {
    await echo.close();
    const { error } = await roundTrip(proxy.port, Buffer.from('x'));
    expect(error).toBe('ECONNRESET');
  });
});
