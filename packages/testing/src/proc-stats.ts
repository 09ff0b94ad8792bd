import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** One reading of a process's counters from /proc (Linux only). */
export interface ProcReading {
  /** User + system CPU time since the process started, in seconds. */
  cpuSeconds: number;
  /** Resident set size now, in bytes (VmRSS). */
  rssBytes: number;
  /** The process's lifetime peak resident set size, in bytes (VmHWM). */
  hwmBytes: number;
}

/** What a process used while a scenario ran. */
export interface ProcessUsage {
  pid: number;
  wallSeconds: number;
  /** CPU seconds (user + system) spent during the window. */
  cpuSeconds: number;
  /** Average cores kept busy during the window (cpuSeconds / wallSeconds). */
  cpuCores: number;
  /** Highest VmRSS sampled during the window, in MiB. */
  peakRssMiB: number;
  /** The process's lifetime peak RSS (VmHWM) at the end of the window, in MiB. */
  lifetimePeakRssMiB: number;
  samples: number;
}

let clockTicks: number | undefined;

/** Kernel clock ticks per second (the unit of utime/stime in /proc/<pid>/stat). */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const n = Number.parseInt(out.stdout ?? '', 10);
    clockTicks = Number.isFinite(n) && n > 0 ? n : 100;
  }
  return clockTicks;
}

/** Parses utime + stime (fields 14 and 15) out of /proc/<pid>/stat; the comm field may hold spaces. */
export function parseStatCpuTicks(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state), so field N is fields[N - 3].
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error('unexpected /proc/<pid>/stat format');
  return utime + stime;
}

/** Reads a `Name:   N kB` line of /proc/<pid>/status, in bytes (0 when absent). */
export function parseStatusKiB(status: string, name: string): number {
  const m = new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, 'm').exec(status);
  return m?.[1] ? Number(m[1]) * 1024 : 0;
}

/** One reading, or undefined when /proc is not there (not Linux) or the process is gone. */
export function readProc(pid: number): ProcReading | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return {
      cpuSeconds: parseStatCpuTicks(stat) / ticksPerSecond(),
      rssBytes: parseStatusKiB(status, 'VmRSS'),
      hwmBytes: parseStatusKiB(status, 'VmHWM'),
    };
  } catch {
    return undefined;
  }
}

const MiB = 1024 * 1024;
const round = (n: number, digits = 2) => Number(n.toFixed(digits));

/**
 * Samples a process's CPU time and RSS while something runs: `start` takes the first reading,
 * a timer samples RSS every `intervalMs` (the peak is the highest sample), `stop` takes the last
 * reading and returns the usage in between. Returns undefined where /proc is unavailable.
 */
export class ProcessSampler {
  private readonly timer: NodeJS.Timeout;
  private readonly startedAt = performance.now();
  private peakRss: number;
  private samples = 1;

  private constructor(
    readonly pid: number,
    private readonly first: ProcReading,
    intervalMs: number,
  ) {
    this.peakRss = first.rssBytes;
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  static start(pid: number | undefined, intervalMs = 100): ProcessSampler | undefined {
    if (pid === undefined) return undefined;
    const first = readProc(pid);
    return first ? new ProcessSampler(pid, first, intervalMs) : undefined;
  }

  private sample(): ProcReading | undefined {
    const reading = readProc(this.pid);
    if (reading) {
      this.samples += 1;
      this.peakRss = Math.max(this.peakRss, reading.rssBytes);
    }
    return reading;
  }

  stop(): ProcessUsage | undefined {
    clearInterval(this.timer);
    const last = this.sample();
    if (!last) return undefined;
    const wallSeconds = (performance.now() - this.startedAt) / 1000;
    const cpuSeconds = last.cpuSeconds - this.first.cpuSeconds;
    return {
      pid: this.pid,
      wallSeconds: round(wallSeconds),
      cpuSeconds: round(cpuSeconds),
      cpuCores: round(wallSeconds > 0 ? cpuSeconds / wallSeconds : 0),
      peakRssMiB: round(this.peakRss / MiB, 1),
      lifetimePeakRssMiB: round(last.hwmBytes / MiB, 1),
      samples: this.samples,
    };
  }
}
