import { join } from 'node:path';
import { authBenchmark } from './auth';
import { type BenchContext, type BenchSettings, type Emulator, repoRoot, startProvisionedEmulator } from './lib/context';
import { ProcessRegistry } from './lib/processes';
import { type BenchmarkReport, type Goal, machineFacts, renderScenarios, type RunReport, writeResults } from './lib/report';
import { pipelineBenchmark } from './pipeline';
import { uploadBenchmark } from './upload';

/**
 * `npm run bench [-- <benchmark>... [--profile]]` (through scripts/bin/bench.mjs): runs the named
 * benchmarks (all by default: auth, upload), prints one table per benchmark, writes
 * bench/results/latest.json, a dated copy per benchmark and a chart per benchmark that has one.
 * Goals are reported, not asserted: the exit code is non-zero only when something failed to run.
 * `--profile` runs the Node servers of the upload benchmark under `--cpu-prof` and prints where
 * their CPU time goes (the profiler adds its own cost to the CPU figures of that run).
 *
 * Knobs (for quick local runs): BENCH_DURATION_SECONDS (5), BENCH_WARMUP_SECONDS (1),
 * BENCH_CONCURRENCY (1,8,32) for auth; BENCH_UPLOAD_SCALE (1: 16 MiB, 256 MiB, 1 GiB and
 * 32 x 16 MiB files; 0.25 shrinks them), BENCH_UPLOAD_ROUNDS (2), BENCH_UPLOAD_PATHS (all:
 * ceiling,floor,flask,buffering,ours,direct) for upload; BENCH_PIPELINE_SCALE (1: 200 uploads, 20 moves, a
 * reconcile of 10,000 objects, a 1 GiB move; 0.05 for a smoke run) for pipeline; BENCH_ONLY (a
 * comma-separated list of benchmark names) runs some of them, as names on the command line do.
 */
const BENCHMARKS: { name: string; run: (ctx: BenchContext) => Promise<BenchmarkReport> }[] = [
  { name: 'auth', run: authBenchmark },
  { name: 'upload', run: uploadBenchmark },
  { name: 'pipeline', run: pipelineBenchmark },
];

/** Benchmark names (none: all, or BENCH_ONLY) and flags from the command line; unknown names are an error. */
export function parseArgs(argv: string[]): { names: string[]; profile: boolean } {
  const known = BENCHMARKS.map((b) => b.name);
  const names = argv.filter((a) => !a.startsWith('--'));
  const flags = argv.filter((a) => a.startsWith('--'));
  const unknown = [...names.filter((n) => !known.includes(n)), ...flags.filter((f) => f !== '--profile')];
  if (unknown.length) throw new Error(`unknown argument(s) ${unknown.join(', ')}: use ${known.join(', ')} and --profile`);
  return { names, profile: flags.includes('--profile') };
}

function settingsFrom(env: NodeJS.ProcessEnv, profile: boolean): BenchSettings {
  const num = (name: string, fallback: number) => {
    const n = Number(env[name]);
    return env[name] && Number.isFinite(n) && n >= 0 ? n : fallback;
  };
  const concurrencies = (env.BENCH_CONCURRENCY ?? '1,8,32')
    .split(',')
    .map((s) => Number.parseInt(s.trim(), 10))
    .filter((n) => Number.isInteger(n) && n > 0);
  return {
    durationSeconds: Math.max(1, num('BENCH_DURATION_SECONDS', 5)),
    warmupSeconds: num('BENCH_WARMUP_SECONDS', 1),
    concurrencies: concurrencies.length ? concurrencies : [1, 8, 32],
    profile,
  };
}

const log = (message: string) => process.stderr.write(`bench: ${message}\n`);
const out = (text: string) => process.stdout.write(`${text}\n`);

async function main(registry: ProcessRegistry): Promise<number> {
  const startedAt = new Date();
  const machine = machineFacts();
  const args = parseArgs(process.argv.slice(2));
  const settings = settingsFrom(process.env, args.profile);
  let emulator: Promise<Emulator> | undefined;
  const ctx: BenchContext = {
    settings,
    registry,
    emulator: () => (emulator ??= startProvisionedEmulator(registry, log)),
    log,
  };

  const only = (process.env.BENCH_ONLY ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const benchmarks: BenchmarkReport[] = [];
  for (const bench of BENCHMARKS.filter((b) => (args.names.length ? args.names : only.length ? only : [b.name]).includes(b.name))) {
    log(`running ${bench.name}`);
    benchmarks.push(await bench.run(ctx));
  }
  const report: RunReport = { startedAt: startedAt.toISOString(), finishedAt: new Date().toISOString(), machine, benchmarks };
  const files = writeResults(join(repoRoot, 'bench/results'), report);

  out(`\nMachine: ${machine.nproc} CPUs (${machine.cpuModel}), ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.platform} ${machine.kernel}`);
  const busy = (machine.loadAverage[0] ?? 0) > machine.nproc;
  out(
    `Load average at the start: ${machine.loadAverage.join(' / ')}${busy ? ' (BUSY: more runnable processes than CPUs; wall-clock figures are not meaningful, CPU seconds and RSS still are)' : ''}`,
  );
  let failed = 0;
  for (const bench of benchmarks) {
    if (bench.name === 'auth') {
      out(`\nEach row: ${settings.warmupSeconds} s warm-up, then ${settings.durationSeconds} s measured; latency of 2xx responses; CPU cores used by server/emulator/load generator; peak RSS of the server.`);
    }
    out(`\n${bench.name}\n${bench.table ?? renderScenarios(bench.scenarios)}`);
    for (const line of summaryLines(bench)) out(line);
    for (const failure of bench.failures) out(`FAILED RUN: ${failure}`);
    failed += bench.failures.length;
  }
  out(`\nResults: ${files.map((f) => f.slice(repoRoot.length + 1)).join(', ')}`);
  return failed > 0 ? 1 : 0;
}

/** What a person needs beside the table: failed requests, the benchmark's own notes, which goals were met. */
function summaryLines(bench: BenchmarkReport): string[] {
  const lines: string[] = [];
  for (const s of bench.scenarios) {
    const failed = Object.entries(s.load.statusCodes).filter(([code]) => !code.startsWith('2'));
    if (failed.length || s.load.errors) {
      const codes = failed.map(([code, n]) => `${code} x${n}`);
      if (s.load.errors) codes.push(`connection errors x${s.load.errors}`);
      lines.push(`Failed requests in ${s.scenario} c=${s.connections}: ${codes.join(', ')}`);
    }
  }
  lines.push(...bench.summary);
  const goals = [
    ...bench.scenarios.filter((s) => s.goal?.met !== undefined).map((s) => ({ ...(s.goal as Goal), description: `${s.scenario} c=${s.connections} (${s.goal?.description})` })),
    ...(bench.goals ?? []).filter((g) => g.met !== undefined),
  ];
  const missed = goals.filter((g) => g.met === false);
  lines.push(`Goals met: ${goals.length - missed.length}/${goals.length}` + (missed.length ? `; missed: ${missed.map((g) => g.description).join('; ')}` : ''));
  return lines;
}

const registry = new ProcessRegistry();
let finishing = false;
const finish = async (code: number) => {
  if (finishing) return;
  finishing = true;
  await registry.stopAll();
  process.exit(code);
};
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (!finishing) log(`${signal}: stopping every process the bench started`);
    void finish(130);
  });
}
process.on('exit', () => registry.killAllNow());

main(registry).then(
  (code) => finish(code),
  (err: unknown) => {
    process.stderr.write(`\nbench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    void finish(1);
  },
);
