import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The parts of a V8 `.cpuprofile` (written by `node --cpu-prof`) that the summary reads. */
export interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[];
  samples: number[];
  /** Microseconds since the previous sample. */
  timeDeltas: number[];
}

export interface ProfileLine {
  name: string;
  seconds: number;
  /** Share of the busy (non-idle) main-thread time. */
  share: number;
}

export interface ProfileSummary {
  /** Main-thread time covered by samples, in seconds (wall time: includes waiting for a CPU). */
  sampledSeconds: number;
  idleSeconds: number;
  busySeconds: number;
  /**
   * Busy time by owner: each sample goes to the nearest frame on its stack that belongs to a package
   * or to the service's own code, so `crypto.Hash#update` called by the signer counts for the
   * signer. Garbage collection and the VM's own work keep their V8 names.
   */
  byOwner: ProfileLine[];
  /** Busy time by leaf function, named with its owner (`update node:internal/crypto/hash <- @smithy/signature-v4`). */
  byFunction: ProfileLine[];
}

const PACKAGE = /node_modules\/((?:@[^/]+\/)?[^/]+)/;

/** Where a frame's code lives: a package name, `app:<path under dist>`, a `node:` module, or '' for the VM. */
export function moduleOf(url: string): string {
  if (!url) return '';
  const pkg = PACKAGE.exec(url);
  if (pkg?.[1]) return pkg[1];
  if (url.startsWith('node:')) return url;
  const dist = /\/dist\/(.+)$/.exec(url);
  return dist?.[1] ? `app:${dist[1]}` : url.replace(/^file:\/\//, '');
}

const isOwner = (module: string) => module !== '' && !module.startsWith('node:');

/** Self time by owner and by function of one profile; `top` lines of each. */
export function summariseCpuProfile(profile: CpuProfile, top = 15): ProfileSummary {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfMicros = new Map<number, number>();
  profile.samples.forEach((id, i) => selfMicros.set(id, (selfMicros.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));

  const ownerOf = (id: number): string => {
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const module = moduleOf(nodes.get(cur)?.callFrame.url ?? '');
      if (isOwner(module)) return module;
    }
    return '';
  };
  let idle = 0;
  let total = 0;
  const byOwner = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const add = (map: Map<string, number>, key: string, micros: number) => map.set(key, (map.get(key) ?? 0) + micros);
  for (const [id, micros] of selfMicros) {
    total += micros;
    const frame = nodes.get(id)?.callFrame;
    const fn = frame?.functionName || '(anonymous)';
    if (fn === '(idle)') {
      idle += micros;
      continue;
    }
    const module = moduleOf(frame?.url ?? '');
    const owner = ownerOf(id);
    add(byOwner, owner || (module ? module : fn), micros);
    const where = module && module !== owner ? ` ${module}` : '';
    add(byFunction, `${fn}${where}${owner ? ` <- ${owner}` : ''}`, micros);
  }
  const busy = total - idle;
  const lines = (map: Map<string, number>) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, micros]) => ({ name, seconds: Number((micros / 1e6).toFixed(3)), share: Number((busy > 0 ? micros / busy : 0).toFixed(3)) }));
  return {
    sampledSeconds: Number((total / 1e6).toFixed(3)),
    idleSeconds: Number((idle / 1e6).toFixed(3)),
    busySeconds: Number((busy / 1e6).toFixed(3)),
    byOwner: lines(byOwner),
    byFunction: lines(byFunction),
  };
}

/** The newest `.cpuprofile` in a folder (node writes one per process when it exits), or undefined. */
export function newestProfile(dir: string): string | undefined {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  } catch {
    return undefined;
  }
  const newest = files.map((f) => join(dir, f)).sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
  return newest;
}

export function readCpuProfile(path: string): CpuProfile {
  return JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
}

/** The summary as text: owners, then functions, each with seconds and share of busy time. */
export function renderProfile(title: string, s: ProfileSummary): string {
  const pct = (n: number) => `${(n * 100).toFixed(1)}%`.padStart(6);
  const block = (lines: ProfileLine[]) => lines.map((l) => `  ${l.seconds.toFixed(2).padStart(7)} s ${pct(l.share)}  ${l.name}`).join('\n');
  return [
    `${title}: ${s.busySeconds} s busy of ${s.sampledSeconds} s sampled on the main thread (samples are wall time: on a busy machine they include waiting for a CPU)`,
    ' by owner (nearest package or service frame on the stack):',
    block(s.byOwner),
    ' by function:',
    block(s.byFunction),
  ].join('\n');
}
