import type { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createAwsClients, loadConfig } from '@scs/common';
import { ResourceNames } from '@scs/local-stack/provision';
import { buildApp as buildUploadApp } from '@scs/upload';
import { UploadConfig } from '@scs/upload/config';
import { UPLOAD_NODE_ARGS } from '@scs/local-stack/stack/run';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { barChartSvg, type Panel } from './lib/chart';
import { type BenchContext, type Emulator, freePort, repoRoot } from './lib/context';
import { newestProfile, type ProfileSummary, readCpuProfile, renderProfile, summariseCpuProfile } from './lib/cpu-profile';
import { type LoadResult, summarise } from './lib/load';
import { GeneratedFile, multipartFile, postStream, rawFile, type StreamedBody } from './lib/payload';
import { type ProcessUsage, readProc } from './lib/proc-stats';
import { purgeVersions } from './lib/s3';
import type { NodeService, ProcessRegistry } from './lib/processes';
import { atLeast, atMost, type BenchmarkReport, fileStamp, formatTable, type Goal, packageVersion, type ScenarioResult } from './lib/report';
import { Watch, type WatchResult } from './lib/watch';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** lib-storage settings of the direct ceiling; the upload service is started with the same. */
const PART_BYTES = 8 * MiB;
const QUEUE_SIZE = 4;
/** Accounts the uploads of our service rotate through. */
const USERS = 8;
/** 256 MiB files sent one after another per round, so their CPU per GiB is measured over 1 GiB as the 1 GiB file's is. */
const MEDIUM_IN_ROW = 4;
const RSS_SAMPLE_MS = 50;
const REQUEST_IDLE_TIMEOUT_MS = 120_000;

const GOALS = {
  /** Our CPU per GiB at most this many times the floor's. */
  cpuVsFloor: 1.5,
  /** Our MB/s at least this share of the direct ceiling's, at every size. */
  throughputVsCeiling: 0.9,
  peakRssMiB: 160,
  /** Peak RSS at 1 GiB at most this much above the one at 16 MiB. */
  rssGrowthMiB: 16,
  /** Peak RSS with 32 x 16 MiB at once at most this many times the floor's. */
  concurrentRssVsFloor: 2,
};

export type PathName = 'ceiling' | 'floor' | 'flask' | 'buffering' | 'ours' | 'direct' | 'other';
const PATH_NAMES: PathName[] = ['ceiling', 'floor', 'flask', 'buffering', 'ours', 'direct', 'other'];
const LABELS: Record<PathName, string> = {
  ceiling: 'ceiling: SDK multipart upload straight to S3 (bench process)',
  floor: 'floor: socket -> SHA-256 -> one streamed PUT (baselines/floor.mjs)',
  flask: 'Flask + boto3 as tutorials write it (baselines/flask_upload.py)',
  buffering: 'buffering: toBuffer() + one PutObject (baselines/buffering.mjs)',
  ours: 'ours: POST /api/files on the upload service',
  direct: 'ours, direct multipart: /api/files/uploads on the upload service, the parts PUT straight to S3 (presigned, SHA-256 per part)',
  other: 'ours, another build: POST /api/files on the upload service of BENCH_UPLOAD_OTHER',
};
const SHORT: Record<PathName, string> = {
  ceiling: 'SDK direct (ceiling)',
  floor: 'floor',
  flask: 'Flask + boto3',
  buffering: 'buffering',
  ours: 'ours',
  direct: 'ours, direct multipart',
  other: 'ours (other build)',
};
const COLORS: Record<PathName, string> = { ceiling: '#7f7f7f', floor: '#2ca02c', flask: '#9467bd', buffering: '#ff7f0e', ours: '#1f77b4', direct: '#d62728', other: '#17becf' };

/** The sizes of one run; BENCH_UPLOAD_SCALE (default 1) shrinks them for quick local runs. */
export function uploadSizesFrom(env: Record<string, string | undefined>) {
  const raw = Number(env.BENCH_UPLOAD_SCALE);
  const scale = Number.isFinite(raw) && raw > 0 && raw <= 1 ? raw : 1;
  const size = (bytes: number) => Math.max(MiB, Math.round((bytes * scale) / MiB) * MiB);
  return { scale, small: size(16 * MiB), medium: size(256 * MiB), large: size(GiB), concurrent: { count: 32, each: size(16 * MiB) }, warmup: MiB };
}

/**
 * Paths to measure: BENCH_UPLOAD_PATHS (comma-separated), all by default. `other` (the upload
 * service of another checkout of this repository, built, at BENCH_UPLOAD_OTHER: a change measured
 * against what it replaces, in the same run) is measured when BENCH_UPLOAD_OTHER is set.
 */
export function uploadPathsFrom(env: Record<string, string | undefined>): PathName[] {
  const wanted = (env.BENCH_UPLOAD_PATHS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = wanted.filter((w) => !PATH_NAMES.includes(w as PathName));
  if (unknown.length) throw new Error(`BENCH_UPLOAD_PATHS: unknown path(s) ${unknown.join(', ')} (known: ${PATH_NAMES.join(', ')})`);
  const other = Boolean(env.BENCH_UPLOAD_OTHER);
  if (wanted.includes('other') && !other) throw new Error('BENCH_UPLOAD_PATHS: the path "other" needs BENCH_UPLOAD_OTHER (another checkout of this repository, built)');
  return PATH_NAMES.filter((p) => (wanted.length ? wanted.includes(p) : p !== 'other' || other));
}

/** One upload: its answer and whether it counts (2xx with the right size, and the right SHA-256 where the path reports one). */
interface Outcome {
  ok: boolean;
  /** HTTP status (SDK: 200 when the multipart upload completed), 0 when none arrived. */
  status: number;
  ms: number;
  bytes: number;
  /** Why it does not count, for the log. */
  problem?: string;
}

type ScenarioKey = 'small' | 'large' | 'medium' | 'concurrent';

/** What one scenario of one path measured in one round. */
interface Measured {
  path: PathName;
  scenario: ScenarioKey;
  round: number;
  files: number;
  /** Bytes of the uploads that counted. */
  bytes: number;
  failed: number;
  wallSeconds: number;
  MBps: number;
  load: LoadResult;
  watch: WatchResult;
  /** The server's lifetime peak RSS (VmHWM) after the scenario, in MiB. */
  hwmMiB?: number;
}

/** Figures of one path over all rounds. */
interface PathFigures {
  path: PathName;
  label: string;
  /** Why the path was not measured (a missing tool), when it was not. */
  skipped?: string;
  /** Best MB/s over the rounds, per scenario. */
  MBps: Partial<Record<ScenarioKey, number>>;
  /** Failed uploads per scenario, over all rounds. */
  failed: Partial<Record<ScenarioKey, number>>;
  /** Server CPU seconds per GiB stored over every measured upload (undefined for the ceiling: no server). */
  cpuSecondsPerGiB?: number;
  /** The same per scenario (all rounds of that scenario). */
  cpuSecondsPerGiBOf: Partial<Record<ScenarioKey, number>>;
  /** Emulator CPU seconds per GiB stored (information: S3's side of each path). */
  emulatorCpuSecondsPerGiB?: number;
  /** Peak RSS of a fresh server up to the end of the 16 MiB upload, and up to the end of the 1 GiB upload (worst round). */
  rssSmallMiB?: number;
  rssLargeMiB?: number;
  /** Peak RSS up to the end of the concurrent uploads (worst round). */
  rssConcurrentMiB?: number;
  profile?: ProfileSummary;
}

const round2 = (n: number, digits = 2) => Number(n.toFixed(digits));
const mbps = (bytes: number, seconds: number) => (seconds > 0 ? round2(bytes / seconds / 1e6, 1) : 0);
const sizeLabel = (bytes: number) => (bytes >= GiB && bytes % GiB === 0 ? `${bytes / GiB} GiB` : `${round2(bytes / MiB, 0)} MiB`);

/** A load result built from the uploads of one batch (same shape as the autocannon runs). */
function loadOf(outcomes: Outcome[], connections: number, wallSeconds: number): LoadResult {
  const ok = outcomes.filter((o) => o.ok);
  const statusCodes: Record<string, number> = {};
  for (const o of outcomes) {
    if (o.status === 0) continue;
    const code = o.ok || o.status >= 300 ? String(o.status) : 'integrity-mismatch';
    statusCodes[code] = (statusCodes[code] ?? 0) + 1;
  }
  const errors = outcomes.filter((o) => o.status === 0).length;
  return {
    connections,
    durationSeconds: round2(wallSeconds),
    requests: ok.length,
    rps: round2(ok.length / wallSeconds, 3),
    latencyMs: summarise(ok.map((o) => o.ms)),
    non2xx: outcomes.length - ok.length - errors,
    errors,
    statusCodes,
  };
}

async function postJson(url: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(15_000) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** CPU seconds one SHA-256 pass over 1 GiB costs in this process (a reference for the CPU column). */
function sha256SecondsPerGiB(): number {
  const buffer = Buffer.alloc(MiB, 0x5a);
  const before = process.cpuUsage();
  const hash = createHash('sha256');
  for (let i = 0; i < 256; i += 1) hash.update(buffer);
  hash.digest();
  const used = process.cpuUsage(before);
  return round2(((used.user + used.system) / 1e6) * 4, 2);
}

/** The Python that runs the Flask baseline (the emulator's), or why there is none. */
function flaskPython(): { python: string } | { missing: string } {
  const candidate = process.env.PYTHON ?? 'python3';
  const probe = spawnSync(candidate, ['-c', 'import sys, flask, boto3; print(sys.executable)'], { encoding: 'utf8' });
  if (probe.error) return { missing: `${candidate} could not be run (${probe.error.message})` };
  if (probe.status !== 0) return { missing: `${candidate} lacks Flask or boto3: ${(probe.stderr ?? '').trim().split('\n').pop() ?? ''}` };
  return { python: probe.stdout.trim() };
}

/** How the bench starts one path's server and sends it one file. */
interface PathRunner {
  name: PathName;
  /** Key prefix its objects land under (purged after every scenario). */
  prefix: string;
  /** Starts a fresh server (none for the ceiling); `profileDir` runs a Node server under --cpu-prof. */
  start(profileDir?: string): Promise<NodeService | undefined>;
  send(file: GeneratedFile, index: number): Promise<Outcome>;
  /** Stops what the runner keeps running across rounds (our auth service). */
  close?(): Promise<void>;
  /** Counts the DynamoDB requests per stored upload (ours). */
  countMetadata?(): Promise<MetadataRequests>;
}

/**
 * Upload benchmark: the same files, through six paths, in the same run against the same emulator:
 *
 * - ceiling: lib-storage multipart uploads from the bench process straight to the emulator (8 MiB
 *   parts, 4 at a time: the settings our service runs with);
 * - floor: a minimal Node process (socket in, one SHA-256, one streamed PUT);
 * - Flask + boto3 written as tutorials do, and a buffering Node service (toBuffer() + PutObject);
 * - ours: POST /api/files on the upload service (multipart form, bearer token, every check);
 * - direct: the resumable routes (/api/files/uploads) of the same service, the parts sent by the
 *   bench process straight to the emulator through the presigned part URLs (`sendDirect`): the
 *   service's CPU on this path is that of signing and checking, none of the bytes.
 *
 * Each round starts every server fresh and sends, one path after the other (the order rotates per
 * round): a 1 MiB warm-up, a 16 MiB file (peak RSS "small"), a 1 GiB file (peak RSS "large"), a
 * 256 MiB file, then 32 x 16 MiB files at once. MB/s is the best round; CPU s/GiB is the server's
 * CPU time (/proc, all threads) over every measured upload of every round; peak RSS is the worst
 * round's. Every answer's size is checked, and its SHA-256 where the path reports one.
 */
export async function uploadBenchmark(ctx: BenchContext): Promise<BenchmarkReport> {
  const startedAt = new Date();
  const sizes = uploadSizesFrom(process.env);
  const paths = uploadPathsFrom(process.env);
  const rounds = Math.max(1, Math.min(5, Number.parseInt(process.env.BENCH_UPLOAD_ROUNDS ?? '', 10) || 2));
  const emulator = await ctx.emulator();
  const bucket = loadConfig(ResourceNames, {}).PRIMARY_BUCKET;
  const failures: string[] = [];
  const summary: string[] = [];
  const aws = createAwsClients({ AWS_REGION: emulator.env.AWS_REGION as string, AWS_ENDPOINT_URL: emulator.endpoint, AWS_MAX_ATTEMPTS: 3, AWS_REQUEST_TIMEOUT_MS: 30_000 });
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const profileRoot = ctx.settings.profile ? join(repoRoot, 'bench/results/profiles', fileStamp(startedAt)) : undefined;
  const measured: Measured[] = [];
  const figures = new Map<PathName, PathFigures>(paths.map((p) => [p, { path: p, label: LABELS[p], MBps: {}, failed: {}, cpuSecondsPerGiBOf: {} }]));
  const integrity = { checked: 0, mismatches: 0 };
  const runners = new Map<PathName, PathRunner>();
  let stopCurrent: (() => Promise<void>) | undefined;
  let metadata: MetadataRequests | undefined;

  try {
    for (const p of paths) {
      const runner = await makeRunner(p, { ctx, emulator, bucket, agent, aws: aws.s3, sizes, integrity });
      if ('skipped' in runner) {
        (figures.get(p) as PathFigures).skipped = runner.skipped;
        ctx.log(`!!! ${LABELS[p]}: SKIPPED: ${runner.skipped}`);
        continue;
      }
      runners.set(p, runner);
    }
    const order = [...runners.values()];
    for (let r = 0; r < rounds; r += 1) {
      const rotated = [...order.slice(r % order.length), ...order.slice(0, r % order.length)];
      for (const runner of rotated) {
        ctx.log(`round ${r + 1}/${rounds}: ${LABELS[runner.name]}`);
        const profileDir = profileRoot ? join(profileRoot, `${runner.name}-round${r + 1}`) : undefined;
        if (profileDir) mkdirSync(profileDir, { recursive: true });
        const server = await runner.start(profileDir);
        stopCurrent = async () => server?.stop();
        const pid = server?.pid;
        // `inRow` files of `count` at once, one batch after another in the same window: a size's CPU
        // figure then rests on at least a GiB of files, not on a 3-second window.
        const scenario = async (key: ScenarioKey, count: number, size: number, seed: number, inRow = 1): Promise<Measured> => {
          const watch = await Watch.start({ server: { name: runner.name, pid: pid ?? -1 }, others: { emulator: emulator.pid, loadgen: process.pid }, intervalMs: RSS_SAMPLE_MS });
          const t0 = performance.now();
          const outcomes: Outcome[] = [];
          for (let b = 0; b < inRow; b += 1) {
            outcomes.push(...(await Promise.all(Array.from({ length: count }, (_, i) => runner.send(new GeneratedFile(size, seed + b * count + i), i)))));
          }
          const wallSeconds = (performance.now() - t0) / 1000;
          const watched = await watch.stop();
          for (const o of outcomes.filter((x) => !x.ok)) ctx.log(`${runner.name} ${key}: upload failed: ${o.problem ?? o.status}`);
          const bytes = outcomes.filter((o) => o.ok).reduce((a, o) => a + o.bytes, 0);
          const hwm = pid === undefined ? undefined : readProc(pid)?.hwmBytes;
          const m: Measured = {
            path: runner.name,
            scenario: key,
            round: r + 1,
            files: count,
            bytes,
            failed: outcomes.filter((o) => !o.ok).length,
            wallSeconds: round2(wallSeconds),
            MBps: mbps(bytes, wallSeconds),
            load: loadOf(outcomes, count, wallSeconds),
            watch: watched,
            ...(hwm !== undefined ? { hwmMiB: round2(Math.max(hwm / MiB, watched.server?.peakRssMiB ?? 0), 1) } : {}),
          };
          measured.push(m);
          server?.assertRunning();
          await purgeVersions(aws.s3, bucket, runner.prefix);
          return m;
        };
        try {
          const warm = await runner.send(new GeneratedFile(sizes.warmup, 1), 0);
          if (!warm.ok) throw new Error(`${runner.name}: the warm-up upload failed: ${warm.problem ?? warm.status}`);
          await purgeVersions(aws.s3, bucket, runner.prefix);
          await scenario('small', 1, sizes.small, 100);
          await scenario('large', 1, sizes.large, 200);
          await scenario('medium', 1, sizes.medium, 300, MEDIUM_IN_ROW);
          await scenario('concurrent', sizes.concurrent.count, sizes.concurrent.each, 400);
        } catch (err) {
          failures.push(`${runner.name} round ${r + 1}: ${(err as Error).message} (the emulator's log: bench/results/emulator.log)`);
          ctx.log(`${runner.name} round ${r + 1} stopped: ${(err as Error).message}${server ? `\nlast output:\n${server.output().split('\n').slice(-10).join('\n')}` : ''}`);
        } finally {
          await server?.stop();
          stopCurrent = undefined;
        }
        const profile = profileDir ? newestProfile(profileDir) : undefined;
        const figure = figures.get(runner.name) as PathFigures;
        if (profile && !figure.profile) figure.profile = summariseCpuProfile(readCpuProfile(profile), 20);
      }
    }
    const counting = runners.get('ours')?.countMetadata;
    if (counting) {
      ctx.log('counting the DynamoDB requests per stored upload (the upload app in this process, a counter on its client)');
      metadata = await counting();
      if (metadata.failed) failures.push(`counting DynamoDB requests: ${metadata.failed} uploads failed`);
    }
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    failures.push(`upload benchmark stopped: ${message}`);
    ctx.log(`upload benchmark stopped: ${err instanceof Error ? (err.stack ?? message) : message}`);
  } finally {
    await stopCurrent?.().catch(() => undefined);
    for (const runner of runners.values()) await runner.close?.().catch(() => undefined);
    for (const prefix of ['users/', 'bench-']) await purgeVersions(aws.s3, bucket, prefix).catch(() => undefined);
    agent.destroy();
    aws.destroy();
  }

  // Figures per path.
  const keys: ScenarioKey[] = ['small', 'large', 'medium', 'concurrent'];
  for (const f of figures.values()) {
    const mine = measured.filter((m) => m.path === f.path);
    if (!mine.length) continue;
    for (const k of keys) {
      const runs = mine.filter((m) => m.scenario === k);
      if (!runs.length) continue;
      f.MBps[k] = Math.max(...runs.map((m) => m.MBps));
      f.failed[k] = runs.reduce((a, m) => a + m.failed, 0);
    }
    const gib = mine.reduce((a, m) => a + m.bytes, 0) / GiB;
    const cpu = (pick: (m: Measured) => ProcessUsage | null | undefined) => {
      const usages = mine.map(pick);
      return usages.every(Boolean) && gib > 0 ? round2(usages.reduce((a, u) => a + (u as ProcessUsage).cpuSeconds, 0) / gib, 2) : undefined;
    };
    if (f.path !== 'ceiling') {
      f.cpuSecondsPerGiB = cpu((m) => m.watch.server);
      for (const k of keys) {
        const runs = mine.filter((m) => m.scenario === k);
        const runGiB = runs.reduce((a, m) => a + m.bytes, 0) / GiB;
        if (runs.length && runGiB > 0 && runs.every((m) => m.watch.server)) {
          f.cpuSecondsPerGiBOf[k] = round2(runs.reduce((a, m) => a + (m.watch.server as ProcessUsage).cpuSeconds, 0) / runGiB, 2);
        }
      }
    }
    f.emulatorCpuSecondsPerGiB = cpu((m) => m.watch.others.emulator);
    const worst = (k: ScenarioKey) => {
      const v = mine.filter((m) => m.scenario === k && m.hwmMiB !== undefined).map((m) => m.hwmMiB as number);
      return v.length ? Math.max(...v) : undefined;
    };
    f.rssSmallMiB = worst('small');
    f.rssLargeMiB = worst('large');
    f.rssConcurrentMiB = worst('concurrent');
  }

  const labelOf: Record<ScenarioKey, string> = {
    small: `${sizeLabel(sizes.small)} x1`,
    large: `${sizeLabel(sizes.large)} x1`,
    medium: `${sizeLabel(sizes.medium)} x1`,
    concurrent: `${sizeLabel(sizes.concurrent.each)} x${sizes.concurrent.count}`,
  };
  const goals = [...uploadGoals(figures, labelOf, metadata), ...directGoals(figures, labelOf)];
  const table = renderUploadTable([...figures.values()], labelOf);
  const shaPerGiB = sha256SecondsPerGiB();
  summary.push(
    `MB/s = 10^6 bytes of file content per second of wall time (request sent -> response read), best of ${rounds} round(s) (the ${sizeLabel(sizes.medium)} files ${MEDIUM_IN_ROW} in a row, one at a time); CPU s/GiB = the server process's CPU time (user + system, all threads, from /proc) over every measured upload of every round, per GiB stored; peak RSS = VmHWM of a fresh server after the 16 MiB and after the 1 GiB upload (worst round).`,
    `Integrity: ${integrity.checked} answers carried a SHA-256 (ours, floor), checked against the bytes sent: ${integrity.mismatches} mismatches; every answer's size was checked.`,
    `For scale: one SHA-256 pass costs ${shaPerGiB} s/GiB in the bench process.`,
  );
  if (metadata) {
    summary.push(
      `DynamoDB requests per stored upload (the upload app in the bench process, a counter on its client; ${metadata.sequential} uploads of 1 MiB one at a time, then ${metadata.concurrent} at once): ` +
        `${metadata.perStoredUpload} (${metadata.commandsPerStoredUpload}); HTTP attempts per stored upload with ${metadata.concurrent} at once: ${metadata.attemptsPerStoredUpload}; failed: ${metadata.failed}.`,
    );
  }
  for (const f of figures.values()) {
    if (f.skipped) summary.push(`!!! ${f.label} was SKIPPED: ${f.skipped}`);
  }
  if (ctx.settings.profile) {
    summary.push(`Profiles (--profile; the profiler's own cost is in this run's CPU figures) in ${profileRoot?.slice(repoRoot.length + 1)}:`);
    for (const f of figures.values()) if (f.profile) summary.push(renderProfile(`${f.path}, round 1`, f.profile));
  }

  const scenarios: ScenarioResult[] = measured.map((m) => ({
    scenario: `${m.path}: ${labelOf[m.scenario]} (round ${m.round})`,
    target: LABELS[m.path],
    connections: m.files,
    load: m.load,
    server: m.watch.server && m.path !== 'ceiling' ? { ...m.watch.server, name: m.path } : null,
    serverCpuMsPerRequest: m.watch.server && m.load.requests ? round2((m.watch.server.cpuSeconds * 1000) / m.load.requests, 3) : null,
    others: m.watch.others,
    throughput: { bytes: m.bytes, MBps: m.MBps },
  }));

  return {
    name: 'upload',
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    facts: {
      sizes,
      rounds,
      paths: Object.fromEntries(paths.map((p) => [p, LABELS[p]])),
      partBytes: PART_BYTES,
      queueSize: QUEUE_SIZE,
      figures: [...figures.values()],
      integrity,
      dynamoRequests: metadata,
      sha256OnePassSecondsPerGiB: shaPerGiB,
      goals: GOALS,
      loadGenerator: 'node:http streamed bodies and @aws-sdk/lib-storage in the bench process, on the same machine as the servers and the emulator',
      libStorage: packageVersion('@aws-sdk/lib-storage'),
      emulator: emulator.endpoint,
    },
    scenarios,
    summary,
    failures,
    table,
    goals,
    chartSvg: uploadChart([...figures.values()], labelOf, startedAt),
  };
}

interface RunnerDeps {
  ctx: BenchContext;
  emulator: Emulator;
  bucket: string;
  agent: Agent;
  aws: S3Client;
  sizes: ReturnType<typeof uploadSizesFrom>;
  integrity: { checked: number; mismatches: number };
}

/** Starts nothing yet: returns how to start and drive one path, or why it cannot run here. */
async function makeRunner(name: PathName, deps: RunnerDeps): Promise<PathRunner | { skipped: string }> {
  const { ctx, emulator, bucket, agent, sizes, integrity } = deps;
  const registry: ProcessRegistry = ctx.registry;
  const common = { ...emulator.env, AWS_DEFAULT_REGION: emulator.env.AWS_REGION as string, HOST: '127.0.0.1', LOG_LEVEL: 'warn', SHUTDOWN_GRACE_MS: '2000' };
  const maxBytes = sizes.large + MiB;
  const prof = (dir?: string) => (dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : []);

  /** POSTs a body; counts a 2xx whose size (and SHA-256, when answered) match the file. */
  const post = async (url: string, file: GeneratedFile, body: StreamedBody, headers: Record<string, string> = {}): Promise<Outcome> => {
    const res = await postStream(url, { headers, body, agent, timeoutMs: REQUEST_IDLE_TIMEOUT_MS });
    const outcome: Outcome = { ok: false, status: res.status, ms: res.ms, bytes: file.size };
    if (res.status < 200 || res.status >= 300) return { ...outcome, problem: res.error ?? `${res.status} ${res.body.slice(0, 300)}` };
    const json = JSON.parse(res.body) as { size?: number; sha256?: string };
    if (json.size !== file.size) return { ...outcome, problem: `answered size ${json.size}, sent ${file.size} bytes` };
    if (json.sha256 !== undefined) {
      integrity.checked += 1;
      if (json.sha256 !== file.sha256()) {
        integrity.mismatches += 1;
        return { ...outcome, problem: `answered sha256 ${json.sha256}, sent bytes with sha256 ${file.sha256()}` };
      }
    }
    return { ...outcome, ok: true };
  };
  const form = (file: GeneratedFile) => multipartFile('file', `bench-${file.seed}.png`, 'image/png', file);

  switch (name) {
    case 'ceiling':
      return {
        name,
        prefix: 'bench-scratch/',
        start: async () => undefined,
        send: async (file) => {
          const t0 = performance.now();
          try {
            await new Upload({
              client: deps.aws,
              params: { Bucket: bucket, Key: `bench-scratch/${randomUUID()}.png`, Body: Readable.from(file.chunks(), { objectMode: false, highWaterMark: MiB }), ContentType: 'image/png' },
              partSize: PART_BYTES,
              queueSize: QUEUE_SIZE,
              leavePartsOnError: false,
            }).done();
            return { ok: true, status: 200, ms: performance.now() - t0, bytes: file.size };
          } catch (err) {
            return { ok: false, status: 0, ms: performance.now() - t0, bytes: file.size, problem: (err as Error).message };
          }
        },
      };
    case 'floor':
    case 'buffering': {
      let url = '';
      return {
        name,
        prefix: `bench-${name}/`,
        start: async (profileDir) => {
          const port = await freePort();
          const server = await registry.startNode({
            name,
            script: join(repoRoot, 'bench/baselines', `${name}.mjs`),
            nodeArgs: prof(profileDir),
            cwd: repoRoot,
            port,
            readyPath: '/health',
            env: { ...common, PORT: String(port), BUCKET: bucket, MAX_BYTES: String(maxBytes) },
          });
          url = `${server.url}/upload`;
          return server;
        },
        send: (file) => post(url, file, name === 'floor' ? rawFile(file) : form(file)),
      };
    }
    case 'flask': {
      const found = flaskPython();
      if ('missing' in found) return { skipped: `${found.missing}; install Flask and boto3 for that Python (pip install flask boto3) to include this baseline` };
      let url = '';
      return {
        name,
        prefix: 'bench-flask/',
        start: async () => {
          const port = await freePort();
          const server = await registry.startProcess({
            name,
            command: found.python,
            args: [join(repoRoot, 'bench/baselines/flask_upload.py')],
            cwd: repoRoot,
            port,
            readyPath: '/health',
            env: { ...common, PORT: String(port), BUCKET: bucket, PYTHONUNBUFFERED: '1' },
          });
          url = `${server.url}/upload`;
          return server;
        },
        send: (file) => post(url, file, form(file)),
      };
    }
    case 'ours':
    case 'direct':
    case 'other': {
      const root = name === 'other' ? resolve(process.env.BENCH_UPLOAD_OTHER as string) : repoRoot;
      const script = join(root, 'services/upload/dist/server.js');
      if (!existsSync(script)) throw new Error(`${script} is missing: build that checkout first (npm run build)`);
      const authPort = await freePort();
      const auth = await registry.startNode({
        name: 'auth',
        script: join(repoRoot, 'services/auth/dist/server.js'),
        cwd: repoRoot,
        port: authPort,
        readyPath: '/ready',
        env: { ...common, PORT: String(authPort), COOKIE_SECURE: 'false', REGISTER_RATE_LIMIT_PER_MINUTE: '100000', REGISTER_RATE_LIMIT_PER_HOUR: '100000', HASH_CONCURRENCY_PER_ADDRESS: '100000', LOGIN_MAX_FAILURES_PER_ADDRESS: '100000' },
      });
      const users = Array.from({ length: USERS }, (_, i) => ({ username: `upload-${i}-${randomBytes(3).toString('hex')}`, password: `Bench ${randomBytes(12).toString('base64url')} pass` }));
      for (const user of users) {
        const reg = await postJson(`${auth.url}/auth/register`, user);
        if (reg.status !== 201) throw new Error(`register answered ${reg.status}: ${JSON.stringify(reg.json)}`);
      }
      let tokens: string[] = [];
      let url = '';
      const serviceEnv = {
        ...common,
        MAX_UPLOAD_BYTES: String(maxBytes),
        QUOTA_BYTES: String(1024 * GiB),
        UPLOADS_PER_MINUTE: '100000',
        UPLOAD_PART_BYTES: String(PART_BYTES),
        UPLOAD_QUEUE_SIZE: String(QUEUE_SIZE),
        // The service's default unless BENCH_UPLOAD_PART_BUFFERS says otherwise (to measure the pool's share of the memory).
        ...(process.env.BENCH_UPLOAD_PART_BUFFERS ? { UPLOAD_PART_BUFFERS: process.env.BENCH_UPLOAD_PART_BUFFERS } : {}),
      };
      return {
        name,
        prefix: 'users/',
        start: async (profileDir) => {
          // Access tokens live 15 minutes: sign in again for every round.
          tokens = [];
          for (const user of users) {
            const login = await postJson(`${auth.url}/auth/login`, user);
            if (login.status !== 200 || typeof login.json.accessToken !== 'string') throw new Error(`login answered ${login.status}: ${JSON.stringify(login.json)}`);
            tokens.push(login.json.accessToken);
          }
          const port = await freePort();
          const server = await registry.startNode({
            name: name === 'other' ? 'upload (other build)' : name === 'direct' ? 'upload (direct)' : 'upload',
            script,
            // As `npm start` and the container image run it.
            nodeArgs: [...UPLOAD_NODE_ARGS, ...prof(profileDir)],
            cwd: root,
            port,
            readyPath: '/ready',
            env: { ...serviceEnv, PORT: String(port) },
          });
          url = `${server.url}/api/files`;
          return server;
        },
        send: (file, i) =>
          name === 'direct'
            ? sendDirect(`${url}/uploads`, file, `Bearer ${tokens[i % tokens.length]}`, agent, integrity)
            : post(url, file, form(file), { authorization: `Bearer ${tokens[i % tokens.length]}` }),
        close: () => auth.stop(),
        ...(name === 'ours'
          ? {
              countMetadata: () =>
                countMetadataRequests({ ...(process.env as Record<string, string>), ...serviceEnv }, tokens, (to, file, headers) => post(to, file, form(file), headers)),
            }
          : {}),
      };
    }
  }
}

/** One part PUT of a resumable upload: a presigned URL, the headers it was signed with, the bytes. */
function putPart(url: string, headers: Record<string, string>, body: Buffer, agent: Agent): Promise<{ status: number; error?: string }> {
  return new Promise((resolveOut) => {
    const req = httpRequest(url, { method: 'PUT', agent, headers: { ...headers, 'content-length': String(body.length) } }, (res) => {
      res.resume();
      res.on('end', () => resolveOut({ status: res.statusCode ?? 0 }));
      res.on('error', (err) => resolveOut({ status: 0, error: err.message }));
    });
    req.setTimeout(REQUEST_IDLE_TIMEOUT_MS, () => req.destroy(new Error('no progress')));
    req.on('error', (err) => resolveOut({ status: 0, error: err.message }));
    req.end(body);
  });
}

/**
 * One file through the resumable routes, as the browser sends it: create the upload, cut the
 * generated bytes into the parts the service chose, SHA-256 of each part, part URLs signed QUEUE_SIZE
 * parts at a time, the parts PUT straight to the emulator (at most QUEUE_SIZE at once), complete.
 * Counts when `complete` answers 201 with the file's size and the SHA-256 of the bytes sent.
 */
async function sendDirect(
  base: string,
  file: GeneratedFile,
  authorization: string,
  agent: Agent,
  integrity: { checked: number; mismatches: number },
): Promise<Outcome> {
  const t0 = performance.now();
  const outcome = (status: number, problem?: string): Outcome => ({ ok: problem === undefined, status, ms: performance.now() - t0, bytes: file.size, ...(problem ? { problem } : {}) });
  const call = async (path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { authorization, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(REQUEST_IDLE_TIMEOUT_MS),
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  const created = await call('', { name: `bench-${file.seed}.png`, size: file.size, contentType: 'image/png', sensitive: false });
  if (created.status !== 201) return outcome(created.status, `create answered ${created.status} ${JSON.stringify(created.json).slice(0, 300)}`);
  const { id, partSize } = created.json as { id: string; partSize: number };

  const inFlight = new Set<Promise<void>>();
  let failure: string | undefined;
  let batch: { partNumber: number; body: Buffer; checksum: string }[] = [];
  const flush = async () => {
    const signed = await call(`/${id}/parts`, { parts: batch.map(({ partNumber, checksum }) => ({ partNumber, checksum })) });
    if (signed.status !== 200) throw new Error(`/parts answered ${signed.status} ${JSON.stringify(signed.json).slice(0, 300)}`);
    const urls = new Map((signed.json.parts as { partNumber: number; url: string; headers: Record<string, string> }[]).map((p) => [p.partNumber, p]));
    for (const part of batch) {
      while (inFlight.size >= QUEUE_SIZE) await Promise.race(inFlight);
      const target = urls.get(part.partNumber);
      if (!target) throw new Error(`/parts signed no URL for part ${part.partNumber}`);
      const sending: Promise<void> = putPart(target.url, target.headers, part.body, agent).then((res) => {
        inFlight.delete(sending);
        if (res.status !== 200) failure ??= `part ${part.partNumber}: ${res.status} ${res.error ?? ''}`.trim();
      });
      inFlight.add(sending);
    }
    batch = [];
  };
  try {
    // The parts, each copied out of the generated stream (the browser reads a slice of the file).
    const partLength = (n: number) => Math.max(0, Math.min(partSize, file.size - (n - 1) * partSize));
    let partNumber = 1;
    let part = Buffer.allocUnsafe(partLength(partNumber));
    let filled = 0;
    const finishPart = async () => {
      batch.push({ partNumber, body: part, checksum: createHash('sha256').update(part).digest('base64') });
      partNumber += 1;
      part = Buffer.allocUnsafe(partLength(partNumber));
      filled = 0;
      if (batch.length === QUEUE_SIZE) await flush();
    };
    for (const chunk of file.chunks()) {
      for (let at = 0; at < chunk.length; ) {
        const n = Math.min(chunk.length - at, part.length - filled);
        chunk.copy(part, filled, at, at + n);
        filled += n;
        at += n;
        if (filled === part.length) await finishPart();
      }
      if (failure) break;
    }
    if (batch.length && !failure) await flush();
    await Promise.all(inFlight);
  } catch (err) {
    failure ??= (err as Error).message;
  }
  if (failure) {
    // Nothing of a failed upload stays behind: its multipart upload is aborted and its reservation released.
    await fetch(`${base}/${id}`, { method: 'DELETE', headers: { authorization }, signal: AbortSignal.timeout(REQUEST_IDLE_TIMEOUT_MS) }).catch(() => undefined);
    return outcome(0, failure);
  }
  const done = await call(`/${id}/complete`);
  if (done.status !== 201) return outcome(done.status, `complete answered ${done.status} ${JSON.stringify(done.json).slice(0, 300)}`);
  const json = done.json as { size?: number; sha256?: string };
  if (json.size !== file.size) return outcome(done.status, `answered size ${json.size}, sent ${file.size} bytes`);
  integrity.checked += 1;
  if (json.sha256 !== file.sha256()) {
    integrity.mismatches += 1;
    return outcome(done.status, `answered sha256 ${json.sha256}, sent bytes with sha256 ${file.sha256()}`);
  }
  return outcome(done.status);
}

/** The goals of issue "upload path at the floor", from the figures of one run. */
function uploadGoals(figures: Map<PathName, PathFigures>, labelOf: Record<ScenarioKey, string>, metadata?: MetadataRequests): Goal[] {
  const ours = figures.get('ours');
  if (!ours || ours.skipped || ours.cpuSecondsPerGiB === undefined) return [];
  const goals: Goal[] = [];
  const floor = figures.get('floor');
  for (const k of ['medium', 'large'] as const) {
    const mine = ours.cpuSecondsPerGiBOf[k];
    const theirs = floor?.cpuSecondsPerGiBOf[k];
    if (mine === undefined || !theirs) continue;
    const ratio = round2(mine / theirs, 2);
    goals.push(atMost(`CPU per GiB, ${labelOf[k]}: ours ${mine} s vs floor ${theirs} s = x${ratio} (<= x${GOALS.cpuVsFloor})`, ratio, GOALS.cpuVsFloor, 'x'));
  }
  if (ours.rssSmallMiB !== undefined && ours.rssLargeMiB !== undefined) {
    const growth = round2(ours.rssLargeMiB - ours.rssSmallMiB, 1);
    goals.push(
      atMost(`peak RSS at ${labelOf.large}: ${ours.rssLargeMiB} MiB (<= ${GOALS.peakRssMiB})`, ours.rssLargeMiB, GOALS.peakRssMiB, 'MiB'),
      atMost(`peak RSS growth ${labelOf.small} (${ours.rssSmallMiB} MiB) -> ${labelOf.large}: ${growth} MiB (<= ${GOALS.rssGrowthMiB})`, growth, GOALS.rssGrowthMiB, 'MiB'),
    );
  }
  if (ours.rssConcurrentMiB !== undefined && floor?.rssConcurrentMiB) {
    const ratio = round2(ours.rssConcurrentMiB / floor.rssConcurrentMiB, 2);
    goals.push(
      atMost(`peak RSS at ${labelOf.concurrent}: ours ${ours.rssConcurrentMiB} MiB vs floor ${floor.rssConcurrentMiB} MiB = x${ratio} (<= x${GOALS.concurrentRssVsFloor})`, ratio, GOALS.concurrentRssVsFloor, 'x'),
    );
  }
  const ceiling = figures.get('ceiling');
  const flask = figures.get('flask');
  for (const k of ['medium', 'large', 'concurrent'] as const) {
    const mine = ours.MBps[k];
    if (mine === undefined) continue;
    const failed = ours.failed[k] ?? 0;
    const top = ceiling?.MBps[k];
    if (top) {
      const ratio = round2(mine / top, 3);
      const g = atLeast(`MB/s ${labelOf[k]}: ours ${mine} vs ceiling ${top} = ${ratio} (>= ${GOALS.throughputVsCeiling}, 0 failed: ${failed})`, ratio, GOALS.throughputVsCeiling);
      goals.push({ ...g, met: g.met === true && failed === 0 });
    }
    const tutorial = flask?.MBps[k];
    if (tutorial && k !== 'concurrent') goals.push({ description: `MB/s ${labelOf[k]}: ours ${mine} above Flask + boto3 ${tutorial}`, value: mine, limit: tutorial, unit: 'MB/s', met: mine > tutorial });
  }
  if (metadata) {
    goals.push({
      description:
        `DynamoDB requests per stored upload: ${metadata.perStoredUpload} (${metadata.commandsPerStoredUpload}), ` +
        `${metadata.attemptsPerStoredUpload} HTTP attempts per stored upload with ${metadata.concurrent} at once; the fewest that keep the ledger exact: the reservation, then record + usage in one transaction`,
      value: metadata.perStoredUpload,
      unit: 'requests',
    });
  }
  return goals;
}

/**
 * The direct multipart path's figures beside the ceiling and the streamed upload (issue "resumable
 * direct uploads"): its MB/s against the ceiling's at every size, and the upload service's CPU per
 * GiB on it (the service signs and checks, S3 receives the bytes: it carries none of them).
 */
function directGoals(figures: Map<PathName, PathFigures>, labelOf: Record<ScenarioKey, string>): Goal[] {
  const direct = figures.get('direct');
  if (!direct || direct.skipped) return [];
  const goals: Goal[] = [];
  const ceiling = figures.get('ceiling');
  const ours = figures.get('ours');
  for (const k of ['medium', 'large'] as const) {
    const mine = direct.MBps[k];
    const top = ceiling?.MBps[k];
    if (mine === undefined || !top) continue;
    const ratio = round2(mine / top, 3);
    const streamed = ours?.MBps[k];
    const g = atLeast(
      `MB/s ${labelOf[k]}, direct multipart: ${mine} vs ceiling ${top} = ${ratio}${streamed ? ` (streamed upload: ${streamed})` : ''} (>= ${GOALS.throughputVsCeiling}, 0 failed: ${direct.failed[k] ?? 0})`,
      ratio,
      GOALS.throughputVsCeiling,
    );
    goals.push({ ...g, met: g.met === true && (direct.failed[k] ?? 0) === 0 });
  }
  const cpu = direct.cpuSecondsPerGiBOf.large;
  if (cpu !== undefined) {
    const streamed = ours?.cpuSecondsPerGiBOf.large;
    goals.push({
      description: `upload service CPU per GiB on the direct path, ${labelOf.large}: ${cpu} s${streamed ? ` (streamed upload: ${streamed} s)` : ''}; it carries no file bytes`,
      value: cpu,
      unit: 's/GiB',
    });
  }
  return goals;
}

/** DynamoDB requests the upload service makes per stored upload, counted on its own client. */
interface MetadataRequests {
  /** Uploads stored one at a time, and with `concurrent` at once. */
  sequential: number;
  concurrent: number;
  /** Commands sent per stored upload, one at a time (each counted once however many attempts the SDK made). */
  perStoredUpload: number;
  /** The same by command, e.g. `TransactWriteItems x2`. */
  commandsPerStoredUpload: string;
  /** HTTP attempts per stored upload while `concurrent` uploads ran at once (retries and transaction conflicts show here). */
  attemptsPerStoredUpload: number;
  /** Uploads that failed while counting. */
  failed: number;
}

/**
 * Counts the DynamoDB requests of stored uploads: the upload service's app, built in this process
 * with a counter on its DynamoDB client (commands at the SDK's initialize step, HTTP attempts at
 * finalizeRequest), against the same emulator, fed real multipart uploads over HTTP: `sequential`
 * uploads of 1 MiB one at a time, then `concurrent` at once.
 */
async function countMetadataRequests(
  env: Record<string, string>,
  tokens: string[],
  send: (url: string, file: GeneratedFile, headers: Record<string, string>) => Promise<Outcome>,
  counts = { sequential: 8, concurrent: 32 },
): Promise<MetadataRequests> {
  const config = loadConfig(UploadConfig, env);
  const aws = createAwsClients(config);
  const commands = new Map<string, number>();
  let attempts = 0;
  aws.dynamo.middlewareStack.add(
    (next, context) => async (args) => {
      const name = (context.commandName ?? '?').replace(/Command$/, '');
      commands.set(name, (commands.get(name) ?? 0) + 1);
      return next(args);
    },
    { step: 'initialize', name: 'benchDynamoCommands' },
  );
  aws.dynamo.middlewareStack.add(
    (next) => async (args) => {
      attempts += 1;
      return next(args);
    },
    { step: 'finalizeRequest', name: 'benchDynamoAttempts' },
  );
  const app = await buildUploadApp(config, { aws, fastify: { logger: { level: 'warn' } } });
  try {
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    const url = `${address}/api/files`;
    const auth = (i: number) => ({ authorization: `Bearer ${tokens[i % tokens.length]}` });
    let failed = 0;
    for (let i = 0; i < counts.sequential; i += 1) if (!(await send(url, new GeneratedFile(MiB, 900 + i), auth(i))).ok) failed += 1;
    const total = [...commands.values()].reduce((a, n) => a + n, 0);
    const stored = counts.sequential - failed;
    const byCommand = [...commands.entries()].map(([name, n]) => `${name} x${round2(n / Math.max(1, stored), 2)}`).join(', ');
    attempts = 0;
    const outcomes = await Promise.all(Array.from({ length: counts.concurrent }, (_, i) => send(url, new GeneratedFile(MiB, 1000 + i), auth(i))));
    const storedAtOnce = outcomes.filter((o) => o.ok).length;
    failed += counts.concurrent - storedAtOnce;
    return {
      sequential: counts.sequential,
      concurrent: counts.concurrent,
      perStoredUpload: round2(total / Math.max(1, stored), 2),
      commandsPerStoredUpload: byCommand,
      attemptsPerStoredUpload: round2(attempts / Math.max(1, storedAtOnce), 2),
      failed,
    };
  } finally {
    await app.close();
    aws.destroy();
  }
}

const fmt = (n: number | undefined, digits = 1) => (n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(digits));

/** One row per path: MB/s per size, failures, CPU s/GiB (server and emulator), peak RSS. */
function renderUploadTable(figures: PathFigures[], labelOf: Record<ScenarioKey, string>): string {
  const header = [
    'path',
    `MB/s ${labelOf.medium}`,
    `MB/s ${labelOf.large}`,
    `MB/s ${labelOf.concurrent}`,
    'failed',
    'CPU s/GiB',
    `CPU ${labelOf.medium}`,
    `CPU ${labelOf.large}`,
    'emulator s/GiB',
    `RSS MiB ${labelOf.small}`,
    `RSS MiB ${labelOf.large}`,
    `RSS MiB ${labelOf.concurrent}`,
  ];
  const rows = figures.map((f) =>
    f.skipped
      ? [SHORT[f.path], 'SKIPPED', '', '', '', '', '', '', '', '', '', '']
      : [
          SHORT[f.path],
          fmt(f.MBps.medium),
          fmt(f.MBps.large),
          fmt(f.MBps.concurrent),
          String(Object.values(f.failed).reduce((a, n) => a + (n ?? 0), 0)),
          fmt(f.cpuSecondsPerGiB, 2),
          fmt(f.cpuSecondsPerGiBOf.medium, 2),
          fmt(f.cpuSecondsPerGiBOf.large, 2),
          fmt(f.emulatorCpuSecondsPerGiB, 2),
          fmt(f.rssSmallMiB, 0),
          fmt(f.rssLargeMiB, 0),
          fmt(f.rssConcurrentMiB, 0),
        ],
  );
  const legend = figures.map((f) => `  ${SHORT[f.path]}: ${f.label}`).join('\n');
  return `${formatTable(header, rows)}\n${legend}`;
}

/** The table as a chart: MB/s per size, CPU s/GiB, and peak RSS, one bar per path. */
export function uploadChart(figures: PathFigures[], labelOf: Record<ScenarioKey, string>, startedAt: Date): string {
  const shown = figures.filter((f) => !f.skipped);
  const floor = shown.find((f) => f.path === 'floor')?.cpuSecondsPerGiBOf.large;
  const panels: Panel[] = [
    {
      title: 'Throughput, best round',
      unit: 'MB/s',
      groups: [labelOf.medium, labelOf.large, labelOf.concurrent],
      values: shown.map((f) => [f.MBps.medium ?? null, f.MBps.large ?? null, f.MBps.concurrent ?? null]),
    },
    {
      title: 'Server CPU per GiB stored',
      unit: 's/GiB',
      groups: [`server, ${labelOf.medium}`, `server, ${labelOf.large}`, 'emulator (S3 side)'],
      values: shown.map((f) => [f.cpuSecondsPerGiBOf.medium ?? null, f.cpuSecondsPerGiBOf.large ?? null, f.emulatorCpuSecondsPerGiB ?? null]),
      lines: floor ? [{ value: GOALS.cpuVsFloor * floor, label: `goal for ours: ${GOALS.cpuVsFloor} x floor (${labelOf.large})` }] : [],
    },
    {
      title: 'Peak RSS of a fresh server',
      unit: 'MiB',
      groups: [`after ${labelOf.small}`, `after ${labelOf.large}`, `after ${labelOf.concurrent}`],
      values: shown.map((f) => [f.rssSmallMiB ?? null, f.rssLargeMiB ?? null, f.rssConcurrentMiB ?? null]),
      lines: [{ value: GOALS.peakRssMiB, label: `goal for ours: ${GOALS.peakRssMiB} MiB` }],
    },
  ];
  return barChartSvg({
    title: 'npm run bench -- upload: the same files through every path to the same S3 emulator',
    subtitle: `${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC, Node ${process.version}; see bench/results/latest.json for the machine and its load`,
    series: shown.map((f) => ({ name: SHORT[f.path], color: COLORS[f.path] })),
    panels,
  });
}
