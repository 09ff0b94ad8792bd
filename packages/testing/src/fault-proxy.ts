import { connect, createServer, type Server, type Socket } from 'node:net';

/** Faults a FaultProxy applies to the bytes it forwards; each can be changed while connections are open. */
export interface Faults {
  /** One-way delay added to every chunk, in each direction, in ms. */
  latencyMs: number;
  /** Bandwidth cap per connection and direction, in bytes per second; 0 is no cap. */
  bytesPerSecond: number;
  /**
   * A connection is reset (TCP RST to both ends) once it has carried this many bytes, both
   * directions together, counted from when this fault was set (or from the connection's start, if
   * later); 0 never resets.
   */
  resetAfterBytes: number;
}

export const NO_FAULTS: Readonly<Faults> = { latencyMs: 0, bytesPerSecond: 0, resetAfterBytes: 0 };

/** What went through a FaultProxy since it was created. */
export interface FaultProxyStats {
  /** Connections accepted from clients. */
  connections: number;
  /** Connections reset by `resetAfterBytes` or by `stop`. */
  resets: number;
  /** Bytes forwarded, both directions. */
  bytes: number;
}

/** Above this many bytes waiting for their departure time, the sending side is paused. */
const QUEUE_HIGH_WATER_BYTES = 1024 * 1024;

/**
 * A TCP proxy on 127.0.0.1 that injects faults between clients and a target (the services and the
 * AWS emulator): latency, a bandwidth cap, resets after N bytes, and `stop`/`start`, which makes
 * the target look dead (open connections reset, new ones refused) and alive again on the same
 * port. Without faults, bytes pass unchanged and in order, with back-pressure both ways.
 */
export class FaultProxy {
  private server: Server | undefined;
  private readonly links = new Set<Link>();
  private current: Faults = { ...NO_FAULTS };
  private faultEpoch = 0;
  private boundPort: number;
  readonly stats: FaultProxyStats = { connections: 0, resets: 0, bytes: 0 };

  constructor(
    private readonly target: { host: string; port: number },
    /** The port to listen on; 0 picks a free one at the first `start`, kept for later starts. */
    port = 0,
  ) {
    this.boundPort = port;
  }

  /** `http://127.0.0.1:<port>`: where clients connect instead of the target. */
  get url(): string {
    if (!this.boundPort) throw new Error('the fault proxy has not been started');
    return `http://127.0.0.1:${this.boundPort}`;
  }

  get port(): number {
    return this.boundPort;
  }

  get running(): boolean {
    return this.server !== undefined;
  }

  get faults(): Readonly<Faults> {
    return this.current;
  }

  /** Open client connections. */
  get openConnections(): number {
    return this.links.size;
  }

  /** Listens (again, on the same port after a `stop`). */
  async start(): Promise<void> {
    if (this.server) return;
    // Half-open allowed: each direction ends on its own (a client's FIN must not cut the answer).
    const server = createServer({ noDelay: true, allowHalfOpen: true }, (socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: this.boundPort, host: '127.0.0.1' }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    if (typeof address === 'object' && address) this.boundPort = address.port;
    this.server = server;
  }

  /** The target "dies": the port stops listening (new connections are refused) and every open connection is reset. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const link of [...this.links]) link.reset();
    await closed;
  }

  /** Changes some faults; the rest stay as they are. Applies to open connections too. */
  set(faults: Partial<Faults>): void {
    if (faults.resetAfterBytes !== undefined) this.faultEpoch += 1;
    this.current = { ...this.current, ...faults };
  }

  /** Back to forwarding unchanged. */
  clear(): void {
    this.set({ ...NO_FAULTS });
  }

  private accept(client: Socket): void {
    this.stats.connections += 1;
    const link = new Link(this, client, connect({ host: this.target.host, port: this.target.port, noDelay: true, allowHalfOpen: true }));
    this.links.add(link);
    link.closed.then(() => this.links.delete(link), () => this.links.delete(link));
  }

  /** @internal */
  epoch(): number {
    return this.faultEpoch;
  }
}

/** One client connection and its upstream connection. */
class Link {
  readonly closed: Promise<void>;
  private carried = 0;
  private epoch = -1;
  private done = false;

  constructor(
    private readonly proxy: FaultProxy,
    private readonly client: Socket,
    private readonly upstream: Socket,
  ) {
    this.closed = new Promise((resolve) => {
      let open = 2;
      const onClose = () => {
        open -= 1;
        if (open === 0) resolve();
      };
      client.once('close', onClose);
      upstream.once('close', onClose);
    });
    // An error on either side (the target refusing, a client vanishing) resets the other side.
    client.on('error', () => this.reset(false));
    upstream.on('error', () => this.reset(false));
    new Shaper(proxy, client, upstream, (n) => this.count(n));
    new Shaper(proxy, upstream, client, (n) => this.count(n));
  }

  /** Counts forwarded bytes; false (and the link is reset) once `resetAfterBytes` is exceeded. */
  private count(n: number): boolean {
    const { resetAfterBytes } = this.proxy.faults;
    const epoch = this.proxy.epoch();
    if (epoch !== this.epoch) {
      this.epoch = epoch;
      this.carried = 0;
    }
    this.carried += n;
    if (resetAfterBytes > 0 && this.carried > resetAfterBytes) {
      this.reset();
      return false;
    }
    this.proxy.stats.bytes += n;
    return true;
  }

  /** Both sides get a TCP RST (as when a host dies), not an orderly close. */
  reset(countIt = true): void {
    if (this.done) return;
    this.done = true;
    if (countIt) this.proxy.stats.resets += 1;
    for (const socket of [this.client, this.upstream]) {
      if (socket.destroyed) continue;
      // resetAndDestroy needs a connected TCP handle; before that, destroy is all there is.
      if (socket.readyState === 'open' || socket.readyState === 'readOnly' || socket.readyState === 'writeOnly') socket.resetAndDestroy();
      else socket.destroy();
    }
  }
}

/**
 * One direction of a link: each chunk leaves at its departure time, which adds the latency and,
 * with a bandwidth cap, spaces chunks by their size; order is kept, and the source is paused
 * while the queue is long or the destination is full.
 */
class Shaper {
  private readonly queue: { chunk: Buffer; departAt: number }[] = [];
  private queuedBytes = 0;
  private lastSent = 0;
  private timer: NodeJS.Timeout | undefined;
  private ended = false;
  private blocked = false;

  constructor(
    private readonly proxy: FaultProxy,
    private readonly from: Socket,
    private readonly to: Socket,
    private readonly count: (n: number) => boolean,
  ) {
    from.on('data', (chunk: Buffer) => this.onData(chunk));
    // The source's end (or close) passes on once everything queued has left.
    const finish = () => {
      this.ended = true;
      this.pump();
    };
    from.once('end', finish);
    from.once('close', finish);
    to.on('drain', () => {
      this.blocked = false;
      this.pump();
    });
  }

  private onData(chunk: Buffer): void {
    if (!this.count(chunk.length)) return;
    const { latencyMs, bytesPerSecond } = this.proxy.faults;
    const now = performance.now();
    const sendStart = Math.max(now, this.lastSent);
    this.lastSent = sendStart + (bytesPerSecond > 0 ? (chunk.length * 1000) / bytesPerSecond : 0);
    const departAt = this.lastSent + latencyMs;
    if (this.queue.length === 0 && !this.blocked && departAt <= now) {
      this.write(chunk);
      return;
    }
    this.queue.push({ chunk, departAt });
    this.queuedBytes += chunk.length;
    if (this.queuedBytes > QUEUE_HIGH_WATER_BYTES) this.from.pause();
    this.pump();
  }

  private write(chunk: Buffer): void {
    if (this.to.destroyed) return;
    if (!this.to.write(chunk)) {
      this.blocked = true;
      this.from.pause();
    }
  }

  private pump(): void {
    if (this.timer) return;
    const now = performance.now();
    while (!this.blocked && this.queue.length > 0 && (this.queue[0] as { departAt: number }).departAt <= now) {
      const { chunk } = this.queue.shift() as { chunk: Buffer };
      this.queuedBytes -= chunk.length;
      this.write(chunk);
    }
    const head = this.queue[0];
    if (head && !this.blocked) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, Math.max(1, Math.ceil(head.departAt - now)));
    }
    if (!this.blocked && this.queuedBytes <= QUEUE_HIGH_WATER_BYTES && !this.from.destroyed) this.from.resume();
    if (this.ended && this.queue.length === 0 && !this.to.destroyed) this.to.end();
  }
}
