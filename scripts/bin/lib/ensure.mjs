// Installs what the project needs before any dependency exists: node: built-ins only.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

function run(cmd, args, opts = {}) {
  const res = spawnSync(cmd, args, { cwd: repoRoot, stdio: 'inherit', ...opts });
  if (res.error) throw new Error(`${cmd} could not run: ${res.error.message}`);
  if (res.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${res.status})`);
}

const mtime = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0);

/** `npm ci` when node_modules is missing or older than the lockfile. */
export function ensureNodeModules() {
  const marker = join(repoRoot, 'node_modules', '.package-lock.json');
  if (existsSync(marker) && mtime(marker) >= mtime(join(repoRoot, 'package-lock.json'))) return;
  console.log('Installing npm dependencies (npm ci)...');
  run('npm', ['ci', '--no-audit', '--no-fund']);
}

const canImportMoto = (python) =>
  spawnSync(python, ['-c', 'import moto.server'], { stdio: 'ignore' }).status === 0;

/** The AWS emulator: the system Python's moto when present, else one installed into .venv/. */
export function ensureMoto() {
  const python = process.env.PYTHON ?? 'python3';
  if (canImportMoto(python)) return python;
  const venvPython = join(repoRoot, '.venv', 'bin', 'python');
  if (existsSync(venvPython) && canImportMoto(venvPython)) return venvPython;
  const version = spawnSync(python, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], { encoding: 'utf8' });
  if (version.status !== 0) throw new Error(`Python 3.10 or newer is required for the local AWS emulator ("${python}" not found)`);
  const [major, minor] = version.stdout.trim().split('.').map(Number);
  if (major < 3 || (major === 3 && minor < 10)) throw new Error(`Python 3.10 or newer is required, found ${version.stdout.trim()}`);
  console.log('Installing the AWS emulator (moto) into .venv/ ...');
  if (!existsSync(venvPython)) run(python, ['-m', 'venv', join(repoRoot, '.venv')]);
  run(venvPython, ['-m', 'pip', 'install', '--quiet', 'moto[server]>=5,<6']);
  return venvPython;
}

/** Incremental TypeScript build of every workspace (fast when up to date). */
export function ensureBuilt() {
  run('npx', ['tsc', '-b']);
}

/** Runs `fn`, printing a clear message instead of a stack trace when setting up fails. */
export async function main(fn) {
  try {
    await fn();
  } catch (err) {
    console.error(`\n${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
}
