import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

/**
 * The front page and the reference documents link to each other and into the repository: every
 * relative link in README.md, docs/*.md and bench/README.md must point at a file or folder that
 * exists and, when it names an anchor in a markdown file, at a heading of that file (GitHub's
 * anchors: the heading's text, lower-cased, punctuation dropped, spaces as hyphens).
 */

const ROOT = join(__dirname, '../../..');
const DOCUMENTS = [
  'README.md',
  'bench/README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`),
];

/** The text of a markdown file outside fenced code blocks and inline code spans. */
function prose(markdown: string): string {
  return markdown
    .replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '')
    .replace(/`[^`\n]*`/g, '');
}

/** GitHub's anchor for a heading's text, e.g. `The deploy rehearsal: \`npm run x\`` -> `the-deploy-rehearsal-npm-run-x`. */
export function anchorOf(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\p{M}\s_-]/gu, '')
    .trim()
    .replace(/\s/g, '-');
}

/** Every anchor a markdown file's headings define (a repeated heading gets `-1`, `-2`, ...). */
function anchorsOf(file: string): Set<string> {
  const markdown = readFileSync(file, 'utf8').replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const match of markdown.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = anchorOf(match[1] ?? '');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

/** The relative link targets of a markdown file (`[text](target)` and `![alt](target)`). */
function linksOf(file: string): string[] {
  const targets: string[] = [];
  for (const match of prose(readFileSync(file, 'utf8')).matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
    const target = match[1] ?? '';
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
    targets.push(target);
  }
  return targets;
}

/** Why a link from `from` (relative to the root) does not resolve, or undefined when it does. */
function brokenBecause(from: string, target: string): string | undefined {
  const [pathPart = '', anchor] = target.split('#', 2);
  const file = pathPart === '' ? join(ROOT, from) : join(ROOT, dirname(from), decodeURIComponent(pathPart));
  if (!existsSync(file)) return `no file ${relative(ROOT, file)}`;
  if (anchor === undefined || anchor === '') return undefined;
  if (statSync(file).isDirectory() || !file.endsWith('.md')) return `an anchor into ${relative(ROOT, file)}, which is not a markdown file`;
  return anchorsOf(file).has(decodeURIComponent(anchor).toLowerCase()) ? undefined : `no heading for #${anchor} in ${relative(ROOT, file)}`;
}

describe('documentation links', () => {
  it('the anchor of a heading is GitHub\'s', () => {
    expect(anchorOf('The deploy rehearsal: `npm run test:deploy`')).toBe('the-deploy-rehearsal-npm-run-testdeploy');
    expect(anchorOf("Restore a user's file")).toBe('restore-a-users-file');
    expect(anchorOf('Auth: token verification (quiet run, 2026-12-01)')).toBe('auth-token-verification-quiet-run-2026-12-01');
  });

  it.each(DOCUMENTS)('every relative link in %s resolves', (document) => {
    const broken = linksOf(join(ROOT, document))
      .map((target) => ({ target, why: brokenBecause(document, target) }))
      .filter((link) => link.why !== undefined);
    expect(broken).toEqual([]);
  });
});
