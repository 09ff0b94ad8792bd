// Used inside docker/Dockerfile's build stages only (node: built-ins only).
//   node docker/workspace.mjs closure <workspace dir>  -> the workspace and every workspace it
//        uses, recursively: its @scs/* dependencies and its TypeScript project references
//        (tsconfig.json "references"), one directory per line
//   node docker/workspace.mjs prune <app dir> <workspace dir>  -> removes from <app dir> every
//        other workspace folder and everything at the top but node_modules, package.json and
//        the folders of the workspaces it keeps (tests/, which holds none of them, goes)
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, normalize, relative } from 'node:path';

const [command, ...args] = process.argv.slice(2);
const root = command === 'prune' ? args[0] : '.';
const manifest = (dir) => JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8'));
const workspaces = manifest('.').workspaces ?? [];
const byName = new Map(workspaces.filter((dir) => existsSync(join(root, dir, 'package.json'))).map((dir) => [manifest(dir).name, dir]));

function closure(dir, seen = new Set()) {
  if (seen.has(dir)) return seen;
  if (!existsSync(join(root, dir, 'package.json'))) throw new Error(`workspace ${dir} has no package.json`);
  seen.add(dir);
  const { dependencies = {} } = manifest(dir);
  for (const name of Object.keys(dependencies)) if (byName.has(name)) closure(byName.get(name), seen);
  const tsconfig = join(root, dir, 'tsconfig.json');
  const references = existsSync(tsconfig) ? (JSON.parse(readFileSync(tsconfig, 'utf8')).references ?? []) : [];
  for (const { path } of references) {
    const referenced = normalize(relative(root, join(root, dir, path)));
    if (workspaces.includes(referenced)) closure(referenced, seen);
  }
  return seen;
}

if (command === 'closure') {
  console.log([...closure(args[0])].join('\n'));
} else if (command === 'prune') {
  const keep = closure(args[1]);
  for (const entry of readdirSync(root)) {
    if (entry !== 'node_modules' && entry !== 'package.json' && ![...keep].some((dir) => dir.split('/')[0] === entry)) rmSync(join(root, entry), { recursive: true, force: true });
  }
  for (const dir of workspaces) if (!keep.has(dir)) rmSync(join(root, dir), { recursive: true, force: true });
} else {
  console.error('usage: workspace.mjs closure <workspace> | prune <app dir> <workspace>');
  process.exit(2);
}
