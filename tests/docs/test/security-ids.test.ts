import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import * as ts from 'typescript';

/**
 * docs/SECURITY.md is the register of the project's security and reliability IDs: every ID that
 * code, tests, Terraform or documentation name is defined there, with the tests that cover it.
 * These tests keep the register and the repository in step:
 * - an ID named anywhere in the repository must have its own section in the register;
 * - a checkov rule named anywhere must be named in the register too;
 * - every test the register lists must exist (a test name in that file);
 * - every test whose name starts with IDs must be listed under each of them;
 * - each section says how far it is covered, and a covered one lists its tests.
 */

const ROOT = join(__dirname, '../../..');
const REGISTER = 'docs/SECURITY.md';

/** Checklist IDs (`FU-01`, `IN-13`) and reliability scenarios (`R1` .. `R15`), wherever they appear. */
const NAMED_ID = /\b(?:[A-Z]{2}-\d{2}|R\d{1,2})\b/g;
/** checkov's rule IDs, which the infrastructure controls cite. */
const CHECKOV_RULE = /\bCKV2?_AWS_\d+\b/g;
/**
 * The IDs a test name starts with: a list of IDs then a colon (`FU-05/FU-06: ...`, `R6: ...`,
 * `A3: ...`), or of checklist IDs then a space (`FX-01 a tab ...`). A short token without a
 * hyphen (`S3`, `E2`) counts only before a colon, so `S3 SlowDown ...` names no ID.
 */
const TEST_NAME_IDS = /^((?:[A-Z]{2}-\d{2}|[A-Z]{1,2}\d{1,2})(?:\s*[,/]\s*(?:[A-Z]{2}-\d{2}|[A-Z]{1,2}\d{1,2}))*)(:|\s)/;
const ID_TOKEN = /[A-Z]{2}-\d{2}|[A-Z]{1,2}\d{1,2}/g;
/** terraform test runs are named after their control: `in_03_...` covers IN-03. */
const RUN_ID = /^([a-z]{2})_(\d{2})_/;

/** Directories that hold no source of ours (installed, built, generated or local state). */
const SKIPPED_DIRS = new Set(['node_modules', '.git', 'dist', '.venv', '.stack', 'coverage', 'test-artifacts', '.terraform']);
const SKIPPED_PATHS = new Set(['package-lock.json', 'bench/results', REGISTER]);
const MAX_FILE_BYTES = 2 * 1024 * 1024;

const toPosix = (path: string) => path.split(sep).join('/');

/** The repository's text files (relative, POSIX separators), without installed or generated ones. */
function repositoryFiles(dir = ROOT): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    const rel = toPosix(relative(ROOT, path));
    if (SKIPPED_PATHS.has(rel) || rel.endsWith('.tfstate') || rel.includes('.tfstate.')) continue;
    if (entry.isDirectory()) {
      if (!SKIPPED_DIRS.has(entry.name)) files.push(...repositoryFiles(path));
    } else if (entry.isFile() && statSync(path).size <= MAX_FILE_BYTES) {
      files.push(rel);
    }
  }
  return files;
}

const read = (rel: string) => readFileSync(join(ROOT, rel), 'utf8');
const isText = (content: string) => !content.includes('\u0000');
const isTestFile = (rel: string) => /\.test\.ts$/.test(rel);
const isTerraformTest = (rel: string) => /\.tftest\.hcl$/.test(rel);

/** Every string literal of a TypeScript file (test names, and the tables `it.each` names tests from). */
function stringLiterals(rel: string, content: string): string[] {
  const source = ts.createSourceFile(rel, content, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const found: string[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) found.push(node.text);
    else if (ts.isTemplateExpression(node)) found.push(node.head.text);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** The run blocks of a terraform test file. */
const runNames = (content: string) => [...content.matchAll(/^run\s+"([^"]+)"/gm)].map((m) => m[1] as string);

/** The test names of a file: string literals of a TypeScript file, run names of a terraform test. */
function testNames(rel: string, content: string): string[] {
  if (isTerraformTest(rel)) return runNames(content);
  if (rel.endsWith('.ts')) return stringLiterals(rel, content);
  return [];
}

/** The IDs a test name is about, by the naming convention (empty for other names). */
function idsOfTestName(name: string): string[] {
  const run = RUN_ID.exec(name);
  if (run) return [`${(run[1] as string).toUpperCase()}-${run[2]}`];
  const match = TEST_NAME_IDS.exec(name);
  if (!match) return [];
  const ids = (match[1] as string).match(ID_TOKEN) ?? [];
  // Before a space only checklist IDs count (see TEST_NAME_IDS).
  if (match[2] !== ':' && ids.some((id) => !id.includes('-'))) return [];
  return ids;
}

interface Occurrence {
  file: string;
  line: number;
}

interface Section {
  id: string;
  line: number;
  coverage?: string;
  tests: { file: string; name: string; line: number }[];
}

const COVERAGE = /^Coverage: (not covered|partly covered|covered)\b/;
const HEADING = /^(#{1,6})\s+(\S+)/;
const SECTION_ID = /^(?:[A-Z]{2}-\d{2}|[A-Z]{1,2}\d{1,2})$/;
const LISTED_TEST = /^[-*]\s+`([^`]+)`:\s+`([^`]+)`/;

/** The register's sections: a heading whose first word is an ID, its coverage line and its list of tests. */
function parseRegister(text: string): Section[] {
  const sections: Section[] = [];
  let current: (Section & { level: number }) | undefined;
  text.split('\n').forEach((raw, index) => {
    const line = raw.trimEnd();
    const heading = HEADING.exec(line);
    if (heading) {
      const level = (heading[1] as string).length;
      const id = heading[2] as string;
      if (SECTION_ID.test(id)) {
        current = { id, line: index + 1, tests: [], level };
        sections.push(current);
      } else if (current && level <= current.level) {
        current = undefined;
      }
      return;
    }
    if (!current) return;
    const coverage = COVERAGE.exec(line);
    if (coverage) current.coverage = coverage[1];
    const listed = LISTED_TEST.exec(line);
    if (listed) current.tests.push({ file: listed[1] as string, name: listed[2] as string, line: index + 1 });
  });
  return sections;
}

const where = (occurrences: Occurrence[]) =>
  occurrences
    .slice(0, 3)
    .map((o) => `${o.file}:${o.line}`)
    .join(', ') + (occurrences.length > 3 ? `, and ${occurrences.length - 3} more` : '');

describe(`the security and reliability IDs (${REGISTER})`, () => {
  const register = read(REGISTER);
  const sections = parseRegister(register);
  const defined = new Map(sections.map((s) => [s.id, s]));

  const files = repositoryFiles()
    .map((file) => ({ file, content: read(file) }))
    .filter(({ content }) => isText(content));

  /** Where each ID, and each checkov rule, is named, outside the register. */
  const named = new Map<string, Occurrence[]>();
  const rules = new Map<string, Occurrence[]>();
  /** Tests whose names carry IDs: `file` -> names. */
  const idTests: { file: string; name: string; ids: string[] }[] = [];
  const names = new Map<string, Set<string>>();

  for (const { file, content } of files) {
    const lines = content.split('\n');
    lines.forEach((text, index) => {
      for (const [pattern, into] of [
        [NAMED_ID, named],
        [CHECKOV_RULE, rules],
      ] as const) {
        for (const m of text.matchAll(pattern)) {
          const list = into.get(m[0]) ?? [];
          list.push({ file, line: index + 1 });
          into.set(m[0], list);
        }
      }
    });
    if (isTestFile(file) || isTerraformTest(file) || file.endsWith('.ts')) {
      const fileNames = testNames(file, content);
      names.set(file, new Set(fileNames));
      if (isTestFile(file) || isTerraformTest(file)) {
        for (const name of new Set(fileNames)) {
          const ids = idsOfTestName(name);
          if (ids.length > 0) idTests.push({ file, name, ids });
          for (const id of ids) if (!named.has(id)) named.set(id, [{ file, line: 0 }]);
        }
      }
    }
  }

  it('finds the IDs it checks (the scan sees the code and the tests)', () => {
    expect(sections.length).toBeGreaterThan(50);
    expect(named.size).toBeGreaterThan(40);
    expect(idTests.length).toBeGreaterThan(100);
  });

  it('defines every ID named in code, tests, Terraform or documentation, each in one section', () => {
    const missing = [...named].filter(([id]) => !defined.has(id)).map(([id, at]) => `${id} (named in ${where(at)})`);
    expect(missing).toEqual([]);
    const twice = sections.filter((s, i) => sections.findIndex((t) => t.id === s.id) !== i).map((s) => `${s.id} (line ${s.line})`);
    expect(twice).toEqual([]);
  });

  it('names every checkov rule the infrastructure controls cite', () => {
    const missing = [...rules].filter(([rule]) => !new RegExp(`\\b${rule}\\b`).test(register)).map(([rule, at]) => `${rule} (named in ${where(at)})`);
    expect(missing).toEqual([]);
  });

  it('lists only tests that exist', () => {
    const broken = sections.flatMap((s) =>
      s.tests
        .filter((t) => !names.get(t.file)?.has(t.name))
        .map((t) => `${REGISTER}:${t.line} (${s.id}): ${names.has(t.file) ? `no test "${t.name}" in ${t.file}` : `no test file ${t.file}`}`),
    );
    expect(broken).toEqual([]);
  });

  it('lists every test whose name carries an ID under each of its IDs', () => {
    const unlisted = idTests.flatMap(({ file, name, ids }) =>
      ids
        .filter((id) => !defined.get(id)?.tests.some((t) => t.file === file && t.name === name))
        .map((id) => `${id}: - \`${file}\`: \`${name}\``),
    );
    expect(unlisted).toEqual([]);
  });

  it('says how far each ID is covered; a covered one lists its tests, an uncovered one none', () => {
    const wrong = sections.flatMap((s) => {
      if (!s.coverage) return [`${s.id} (line ${s.line}): no "Coverage: covered | partly covered | not covered" line`];
      if (s.coverage === 'not covered' && s.tests.length > 0) return [`${s.id} (line ${s.line}): not covered, yet lists tests`];
      if (s.coverage !== 'not covered' && s.tests.length === 0) return [`${s.id} (line ${s.line}): ${s.coverage}, but lists no test`];
      return [];
    });
    expect(wrong).toEqual([]);
  });
});
