import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import type { LoadResult } from './load';
import type { ProcessUsage } from './proc-stats';
import type { EventLoopDelayMs } from './watch';

/** How a scenario compares with the baseline measured in the same run at the same concurrency. */
export interface Comparison {
  against: string;
  /** Scenario req/s divided by baseline req/s. */
  rpsRatio: number;
  /** Scenario p99 divided by baseline p99. */
  p99Ratio: number;
  /** Scenario p99 minus baseline p99, in ms. */
  addedP99Ms: number;
}

/** A performance goal: reported, never asserted. `met` is absent for figures given for information. */
export interface Goal {
  description: string;
  value?: number;
  limit?: number;
  unit?: string;
  met?: boolean;
}

export interface ScenarioResult {
  scenario: string;
  /** What was loaded, e.g. "GET /auth/me on auth". */
  target: string;
  connections: number;
  load: LoadResult;
  /** The server process under test while the scenario ran (null where /proc is unavailable). */
  server: (ProcessUsage & { name: string }) | null;
  /** CPU milliseconds the server spent per successful request. */
  serverCpuMsPerRequest: number | null;
  /** The server's event-loop delay during the window, where it exposes /metrics. */
  eventLoopDelayMs?: EventLoopDelayMs;
  /** CPU and RSS of the other processes on the machine (emulator, load generator). */
  others?: Record<string, ProcessUsage>;
  baseline?: Comparison;
  goal?: Goal;
  note?: string;
  /** Data moved by the successful requests of a transfer scenario (uploads); adds an MB/s column. */
  throughput?: Throughput;
}

/** Bytes moved and the rate, in MB/s (10^6 bytes per second of wall time). */
export interface Throughput {
  bytes: number;
  MBps: number;
}

export interface BenchmarkReport {
  name: string;
  startedAt: string;
  finishedAt: string;
  /** Settings and measured facts the figures depend on (costs, versions, durations). */
  facts: Record<string, unknown>;
  scenarios: ScenarioResult[];
  /** Lines a person needs beside the table (costs, bounds, diagnostics). */
  summary: string[];
  /** Scenarios whose runs failed (too many errors); they make the bench exit non-zero. */
  failures: string[];
  /** The table to print instead of one row per scenario (a benchmark that compares paths side by side). */
  table?: string;
  /** Goals that compare several scenarios; counted with the scenarios' own goals. */
  goals?: Goal[];
  /** An SVG chart of the table, written as bench/results/<name>.svg (not kept in the JSON). */
  chartSvg?: string;
}

export interface MachineFacts {
  nproc: number;
  /** 1, 5 and 15 minute load averages when the run started: above the core count, the machine was busy. */
  loadAverage: number[];
  cpuModel: string;
  memoryGiB: number;
  node: string;
  platform: string;
  kernel: string;
  arch: string;
}

export interface RunReport {
  startedAt: string;
  finishedAt: string;
  machine: MachineFacts;
  benchmarks: BenchmarkReport[];
}

export function machineFacts(): MachineFacts {
  return {
    nproc: availableParallelism(),
    loadAverage: loadavg().map((n) => Number(n.toFixed(2))),
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: Number((totalmem() / 1024 ** 3).toFixed(1)),
    node: process.version,
    platform: process.platform,
    kernel: release(),
    arch: process.arch,
  };
}

/** Compares a scenario's load result with the baseline's at the same concurrency. */
export function compare(load: LoadResult, baseline: LoadResult, against: string): Comparison {
  return {
    against,
    rpsRatio: Number((load.rps / baseline.rps).toFixed(3)),
    p99Ratio: Number((load.latencyMs.p99 / baseline.latencyMs.p99).toFixed(3)),
    addedP99Ms: Number((load.latencyMs.p99 - baseline.latencyMs.p99).toFixed(3)),
  };
}

/** A goal of the form "value below limit". */
export function below(description: string, value: number, limit: number, unit = 'ms'): Goal {
  return { description, value, limit, unit, met: value < limit };
}

/** A goal of the form "value at least limit". */
export function atLeast(description: string, value: number, limit: number, unit = 'x'): Goal {
  return { description, value, limit, unit, met: value >= limit };
}

/** A goal of the form "value at most limit". */
export function atMost(description: string, value: number, limit: number, unit = 'ms'): Goal {
  return { description, value, limit, unit, met: value <= limit };
}

const fmt = (n: number, digits: number) => (Number.isFinite(n) ? n.toFixed(digits) : '-');

/** Left-aligns text columns and right-aligns numeric ones. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.every((r) => /^[-+]?[\d.]*$|^-$/.test(r[i] ?? '')));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (numeric[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/**
 * The table a person reads: one row per scenario and concurrency. A benchmark whose scenarios move
 * data (uploads) gets an MB/s column after req/s.
 */
export function renderScenarios(scenarios: ScenarioResult[]): string {
  const withThroughput = scenarios.some((s) => s.throughput);
  const header = ['scenario', 'conc', 'req/s', 'p50 ms', 'p99 ms', 'failed', 'vs baseline (req/s, p99)', 'cpu srv/emu/gen', 'RSS MiB', 'goal', 'met?'];
  if (withThroughput) header.splice(3, 0, 'MB/s');
  const rows = scenarios.map((s) => {
    const b = s.baseline;
    // A row with neither a comparison nor a goal is a baseline; one with only a goal compares with nothing.
    const vs = b ? `x${fmt(b.rpsRatio, 2)}, ${b.addedP99Ms >= 0 ? '+' : ''}${fmt(b.addedP99Ms, 2)} ms` : s.goal ? '-' : 'baseline';
    const goal = s.goal
      ? s.goal.value !== undefined && s.goal.unit
        ? `${s.goal.description}: ${fmt(s.goal.value, 2)} ${s.goal.unit}`
        : s.goal.description
      : '';
    const met = s.goal?.met === undefined ? '' : s.goal.met ? 'yes' : 'NO';
    return [
      s.scenario,
      String(s.connections),
      fmt(s.load.rps, withThroughput ? 2 : 0),
      ...(withThroughput ? [s.throughput ? fmt(s.throughput.MBps, 1) : '-'] : []),
      fmt(s.load.latencyMs.p50, 2),
      fmt(s.load.latencyMs.p99, 2),
      String(s.load.non2xx + s.load.errors),
      vs,
      [s.server?.cpuCores, s.others?.emulator?.cpuCores, s.others?.loadgen?.cpuCores].map((c) => (c === undefined ? '-' : fmt(c, 2))).join('/'),
      s.server ? fmt(s.server.peakRssMiB, 0) : '-',
      goal,
      met,
    ];
  });
  return formatTable(header, rows);
}

/** `2025-01-31T12-00-00Z`: an ISO timestamp that is a valid file name everywhere. */
export function fileStamp(date: Date): string {
  return date.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
}

/**
 * Writes `latest.json`, `<benchmark>-<ISO date>.json` per benchmark and `<benchmark>.svg` for each
 * chart; returns the paths. `latest.json` keeps the latest result of every benchmark: a run of some
 * benchmarks (`npm run bench -- upload`) replaces theirs and keeps the others' (each says when it ran).
 */
export function writeResults(dir: string, report: RunReport): string[] {
  mkdirSync(dir, { recursive: true });
  const stamp = fileStamp(new Date(report.startedAt));
  const written: string[] = [];
  const write = (name: string, data: string) => {
    const path = join(dir, name);
    writeFileSync(path, data);
    written.push(path);
  };
  const json = (data: unknown) => `${JSON.stringify(data, null, 2)}\n`;
  const benchmarks = report.benchmarks.map(({ chartSvg: _chart, ...bench }) => bench);
  let kept: BenchmarkReport[] = [];
  try {
    const previous = JSON.parse(readFileSync(join(dir, 'latest.json'), 'utf8')) as Partial<RunReport>;
    kept = (previous.benchmarks ?? []).filter((b) => !benchmarks.some((n) => n.name === b.name));
  } catch {
    // no previous results
  }
  write('latest.json', json({ ...report, benchmarks: [...kept, ...benchmarks] }));
  for (const bench of benchmarks) write(`${bench.name}-${stamp}.json`, json({ machine: report.machine, ...bench }));
  for (const bench of report.benchmarks) if (bench.chartSvg) write(`${bench.name}.svg`, bench.chartSvg);
  return written;
}

/** The installed version of a package, as resolved from the bench. */
export function packageVersion(name: string): string {
  const pkg = JSON.parse(readFileSync(require.resolve(`${name}/package.json`), 'utf8')) as { version?: string };
  return pkg.version ?? 'unknown';
}
