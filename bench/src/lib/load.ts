import autocannon from 'autocannon';
import { Watch, type WatchResult, type WatchTargets } from './watch';

export interface LoadOptions {
  /** Base URL of the server, e.g. http://127.0.0.1:3001 (loopback only). */
  url: string;
  method?: 'GET' | 'POST';
  path: string;
  connections: number;
  durationSeconds: number;
  headers?: Record<string, string>;
  body?: string;
  /** Called before every request: lets a run rotate users or tokens. */
  vary?: () => { headers?: Record<string, string>; body?: string };
}

export interface LatencyMs {
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  max: number;
}

export interface LoadResult {
  connections: number;
  durationSeconds: number;
  /** Successful (2xx) responses. */
  requests: number;
  /** Successful responses per second of wall time. */
  rps: number;
  /** Latency of the successful responses, with microsecond resolution. */
  latencyMs: LatencyMs;
  non2xx: number;
  /** Connection errors and timeouts. */
  errors: number;
  statusCodes: Record<string, number>;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] as number;
}

const round3 = (n: number) => Number(n.toFixed(3));

/** Latency summary of raw samples (ms). */
export function summarise(samples: number[]): LatencyMs {
  const sorted = Float64Array.from(samples).sort();
  const mean = samples.length ? samples.reduce((a, b) => a + b, 0) / samples.length : Number.NaN;
  return {
    p50: round3(percentile(sorted, 50)),
    p90: round3(percentile(sorted, 90)),
    p99: round3(percentile(sorted, 99)),
    mean: round3(mean),
    max: round3(sorted.length ? (sorted[sorted.length - 1] as number) : Number.NaN),
  };
}

/**
 * A closed-loop load run with autocannon: `connections` clients, each sending its next request as
 * soon as the previous answer arrived, for `durationSeconds`. Latencies are taken from each
 * response event (autocannon's own histogram rounds to whole milliseconds, too coarse for
 * sub-millisecond comparisons).
 */
export function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const latencies: number[] = [];
  const statusCodes: Record<string, number> = {};
  const request: autocannon.Request = {
    method: opts.method ?? 'GET',
    path: opts.path,
    headers: { ...opts.headers },
    ...(opts.body !== undefined ? { body: opts.body } : {}),
  };
  if (opts.vary) {
    const vary = opts.vary;
    request.setupRequest = (req) => {
      const v = vary();
      return { ...req, ...(v.headers ? { headers: { ...req.headers, ...v.headers } } : {}), ...(v.body !== undefined ? { body: v.body } : {}) };
    };
  }
  return new Promise((resolve, reject) => {
    const startedAt = performance.now();
    const instance = autocannon(
      {
        url: opts.url,
        connections: opts.connections,
        duration: opts.durationSeconds,
        timeout: 10,
        requests: [request],
      },
      (err, result) => {
        if (err) return reject(err instanceof Error ? err : new Error(String(err)));
        const wall = (performance.now() - startedAt) / 1000;
        resolve({
          connections: opts.connections,
          durationSeconds: Number(wall.toFixed(2)),
          requests: latencies.length,
          rps: Number((latencies.length / wall).toFixed(1)),
          latencyMs: summarise(latencies),
          non2xx: result.non2xx,
          errors: result.errors,
          statusCodes,
        });
      },
    );
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      statusCodes[statusCode] = (statusCodes[statusCode] ?? 0) + 1;
      if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
    });
  });
}

/**
 * A discarded warm-up run (JIT, connection pools, caches), then the measured run while the
 * processes in `targets` are watched (CPU, RSS, the server's event-loop delay).
 */
export async function measure(opts: LoadOptions, warmupSeconds: number, targets: WatchTargets): Promise<{ load: LoadResult; watch: WatchResult }> {
  if (warmupSeconds > 0) await runLoad({ ...opts, durationSeconds: warmupSeconds });
  const watch = await Watch.start(targets);
  const load = await runLoad(opts);
  return { load, watch: await watch.stop() };
}
