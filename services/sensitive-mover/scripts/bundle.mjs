#!/usr/bin/env node
// `npm run bundle -w @scs/sensitive-mover`: the Lambda deployment package. esbuild bundles the
// handler (src/handler.ts, built by tsc into dist/handler.js) with every dependency into one file,
// `index.js` (handler string `index.handler`, runtime nodejs22.x), which is zipped into
// dist/lambda.zip with a fixed timestamp so the same sources give the same zip (Terraform's
// source_code_hash only changes when the code does). The source map stays beside it in
// dist/lambda/ for reading stack traces; the package carries no map (it would ship the sources).
import { build } from 'esbuild';
import { createWriteStream, mkdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import yazl from 'yazl';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'dist', 'lambda');
const zipPath = join(root, 'dist', 'lambda.zip');

const result = await build({
  entryPoints: [join(root, 'dist', 'handler.js')],
  outfile: join(outDir, 'index.js'),
  bundle: true,
  platform: 'node',
  target: 'node22',
  format: 'cjs',
  minify: true,
  sourcemap: 'external',
  legalComments: 'external',
  metafile: true,
  logLevel: 'warning',
});

mkdirSync(dirname(zipPath), { recursive: true });
const zip = new yazl.ZipFile();
const mtime = new Date('2020-01-01T00:00:00Z');
for (const file of Object.keys(result.metafile.outputs).filter((f) => !f.endsWith('.map')).sort()) {
  zip.addFile(file, relative(outDir, file), { mtime, mode: 0o100644 });
}
zip.end();
await new Promise((resolve, reject) => {
  zip.outputStream.pipe(createWriteStream(zipPath)).on('close', resolve).on('error', reject);
});
const kib = (n) => `${Math.round(n / 1024)} KiB`;
process.stdout.write(`${relative(process.cwd(), zipPath)}: ${kib(statSync(zipPath).size)} (index.js ${kib(statSync(join(outDir, 'index.js')).size)})\n`);
