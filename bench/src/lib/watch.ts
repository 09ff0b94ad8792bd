import { scrapeMetrics } from '@scs/testing/metrics';
import { type ProcessUsage, ProcessSampler } from './proc-stats';

/** Event-loop delay of a service over a window, from its own Prometheus metrics (prom-client defaults). */
export interface EventLoopDelayMs {
  p50: number;
  p99: number;
  max: number;
}

export interface WatchTargets {
  /** The server under test. `metricsUrl` (its GET /metrics) adds its event-loop delay. */
  server: { name: string; pid: number; metricsUrl?: string };
  /** Other processes whose CPU share explains the figures on a small machine (emulator, load generator). */
  others?: Record<string, number | undefined>;
  /** How often RSS is sampled, in ms (100 unless told). */
  intervalMs?: number;
}

export interface WatchResult {
  server: (ProcessUsage & { name: string }) | null;
  others: Record<string, ProcessUsage>;
  eventLoopDelayMs?: EventLoopDelayMs;
}

const ms = (seconds: number | undefined) => Number(((seconds ?? Number.NaN) * 1000).toFixed(2));

/**
 * Watches the processes involved in a scenario: CPU time and peak RSS from /proc for each, and
 * the server's event-loop delay (prom-client resets its histogram on every scrape, so a scrape at
 * start and one at stop bracket the window).
 */
export class Watch {
  private constructor(
    private readonly targets: WatchTargets,
    private readonly server: ProcessSampler | undefined,
    private readonly others: [string, ProcessSampler | undefined][],
  ) {}

  static async start(targets: WatchTargets): Promise<Watch> {
    if (targets.server.metricsUrl) await scrapeMetrics(targets.server.metricsUrl);
    return new Watch(
      targets,
      ProcessSampler.start(targets.server.pid, targets.intervalMs),
      Object.entries(targets.others ?? {}).map(([name, pid]) => [name, ProcessSampler.start(pid, targets.intervalMs)]),
    );
  }

  async stop(): Promise<WatchResult> {
    const server = this.server?.stop();
    const others: Record<string, ProcessUsage> = {};
    for (const [name, sampler] of this.others) {
      const usage = sampler?.stop();
      if (usage) others[name] = usage;
    }
    const result: WatchResult = { server: server ? { name: this.targets.server.name, ...server } : null, others };
    if (this.targets.server.metricsUrl) {
      const metrics = await scrapeMetrics(this.targets.server.metricsUrl);
      if (metrics?.has('nodejs_eventloop_lag_p99_seconds')) {
        result.eventLoopDelayMs = {
          p50: ms(metrics.get('nodejs_eventloop_lag_p50_seconds')),
          p99: ms(metrics.get('nodejs_eventloop_lag_p99_seconds')),
          max: ms(metrics.get('nodejs_eventloop_lag_max_seconds')),
        };
      }
    }
    return result;
  }
}
