// Installs what the project needs before anything else runs: npm dependencies, the local AWS
// emulator (moto) and the TypeScript build. Plain Node ESM with node: built-ins only, because it
// runs before node_modules exists. `npm start`, `npm test`, `npm run bench`, `npm run test:resilience`
// and `npm run keys:rotate` all use it.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** A set-up step failed: the message says what to do; no stack trace is shown for it. */
export class SetupError extends Error {}

const say = (msg) => process.stderr.write(`setup: ${msg}\n`);

/** Runs a command in the repository, output to the terminal; returns its exit status (null: did not start). */
export function run(cmd, args, opts = {}) {
  const res = spawnSync(cmd, args, { cwd: repoRoot, stdio: 'inherit', ...opts });
  if (res.error) say(`${cmd} could not be started: ${res.error.message}`);
  return res.error ? null : res.status ?? 1;
}

/** A command-line tool installed in node_modules/.bin (faster than npx, never downloads). */
export const localBin = (name) => join(repoRoot, 'node_modules', '.bin', name);

const mtime = (path) => (existsSync(path) ? statSync(path).mtimeMs : 0);

/**
 * `npm ci` when node_modules is missing, or when package-lock.json changed since the last install
 * (npm writes node_modules/.package-lock.json after every install).
 */
export function ensureNodeModules() {
  const lock = join(repoRoot, 'package-lock.json');
  const installed = join(repoRoot, 'node_modules', '.package-lock.json');
  if (existsSync(installed) && mtime(installed) >= mtime(lock)) return;
  const flags = ['--no-audit', '--no-fund'];
  if (existsSync(lock)) {
    say('installing npm dependencies (npm ci)...');
    if (run('npm', ['ci', ...flags]) === 0) return;
    // npm ci also refuses a lock file that lacks optional packages for other platforms when the
    // registry does not serve them (npm/cli#9846); npm install still installs the locked versions.
    say('npm ci failed (see above); trying npm install, which keeps the locked versions...');
  } else {
    say('installing npm dependencies (npm install)...');
  }
  if (run('npm', ['install', ...flags]) !== 0) throw new SetupError('npm could not install the dependencies (see above); fix that and run the command again');
}

const canImportMoto = (python) => spawnSync(python, ['-c', 'import moto.server'], { stdio: 'ignore' }).status === 0;

/**
 * The Python that runs the AWS emulator: the system one (or $PYTHON) when it has moto, else the
 * project's .venv/, which is created and filled here when needed. Returns the interpreter's path.
 */
export function ensureMoto({ root = repoRoot, python = process.env.PYTHON ?? 'python3' } = {}) {
  if (canImportMoto(python)) return python;
  const venv = join(root, '.venv');
  const venvPython = join(venv, 'bin', 'python');
  if (existsSync(venvPython) && canImportMoto(venvPython)) return venvPython;

  const version = spawnSync(python, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], { encoding: 'utf8' });
  if (version.error || version.status !== 0) {
    throw new SetupError(`Python 3.10 or newer is needed for the local AWS emulator, and "${python}" could not be run: install Python 3.10+ (or set PYTHON to its path)`);
  }
  const found = version.stdout.trim();
  const [major, minor] = found.split('.').map(Number);
  if (major < 3 || (major === 3 && minor < 10)) {
    throw new SetupError(`Python 3.10 or newer is needed for the local AWS emulator; "${python}" is ${found}: install a newer Python (or set PYTHON to its path)`);
  }

  say(`installing the local AWS emulator (moto) into .venv/ with Python ${found}...`);
  const hasPip = existsSync(venvPython) && spawnSync(venvPython, ['-m', 'pip', '--version'], { stdio: 'ignore' }).status === 0;
  if (!hasPip && run(python, ['-m', 'venv', '--clear', venv], { cwd: root }) !== 0) {
    throw new SetupError(`"${python} -m venv .venv" failed: on Debian/Ubuntu install the venv module (apt-get install python3-venv) and try again`);
  }
  const pip = [venvPython, ['-m', 'pip', 'install', '--disable-pip-version-check', '--quiet', 'moto[server]>=5,<6']];
  if (run(...pip, { cwd: root }) !== 0 || !canImportMoto(venvPython)) {
    throw new SetupError(`pip could not install moto into .venv/ (is PyPI reachable? a proxy needs PIP_INDEX_URL / HTTPS_PROXY); or install it yourself: ${python} -m pip install 'moto[server]>=5,<6'`);
  }
  return venvPython;
}

/** The incremental TypeScript build of every workspace (`tsc -b`): about a second when nothing changed. */
export function ensureBuilt() {
  if (run(localBin('tsc'), ['-b']) !== 0) throw new SetupError('the TypeScript build failed (errors above)');
}

/**
 * Runs a built entry point (`node <script> ...args`, relative to the repository root) as a child
 * with the interpreter that has moto in PYTHON; SIGINT and SIGTERM are passed on (the child stops
 * what it started), and this process exits with the child's code.
 */
export function runBuilt(script, python, args = []) {
  const child = spawn(process.execPath, [join(repoRoot, script), ...args], {
    cwd: repoRoot,
    stdio: 'inherit',
    env: { ...process.env, PYTHON: python },
  });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

/** The oldest Node.js major version the project runs on (its `engines`; Node 20 is past its end of life). */
export const NODE_MAJOR = 22;

/** Refuses to go on under a Node.js older than `NODE_MAJOR`, saying how to get a newer one. */
export function ensureNode(version = process.versions.node) {
  if (Number(version.split('.')[0]) >= NODE_MAJOR) return;
  throw new SetupError(
    `Node.js ${version} is too old: the project needs Node.js >= ${NODE_MAJOR} (LTS).\n` +
      `Install it from your package manager or nodejs.org, or from the npm registry: npm install --global node@${NODE_MAJOR}`,
  );
}

/** Runs an entry point under a recent enough Node.js, turning a SetupError into a clear message and exit code 1. */
export async function main(fn) {
  try {
    ensureNode();
    await fn();
  } catch (err) {
    if (!(err instanceof SetupError)) throw err;
    process.stderr.write(`\n${err.message}\n`);
    process.exit(1);
  }
}
