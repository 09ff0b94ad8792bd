import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';

/**
 * The conventions tflint's `terraform` ruleset would check (tflint is not packaged for the
 * registries this project installs from): every variable typed and described
 * (terraform_typed_variables, terraform_documented_variables), every output described
 * (terraform_documented_outputs), snake_case names of resources, data sources, variables,
 * outputs, locals and modules (terraform_naming_convention).
 */
export interface ConventionFinding {
  /** File relative to the checked directory. */
  file: string;
  /** e.g. `variable "Region"`. */
  block: string;
  problem: string;
}

const SNAKE_CASE = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/;

/**
 * The HCL parser (@cdktf/hcl2json): HCL text to its JSON form. Loaded without its type
 * declarations, which pull in the DOM library for every file compiled with them; its one
 * function is typed here.
 */
const { parse } = createRequire(__filename)('@cdktf/hcl2json') as { parse(filename: string, text: string): Promise<Record<string, unknown>> };

type Blocks = Record<string, unknown[]>;
type ParsedFile = Partial<Record<'variable' | 'output' | 'module' | 'locals', unknown>> & {
  resource?: Record<string, Blocks>;
  data?: Record<string, Blocks>;
};

/** Every `*.tf` file under `dir`, skipping `.terraform` and other hidden folders. */
export function terraformFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...terraformFiles(path));
    else if (entry.name.endsWith('.tf')) out.push(path);
  }
  return out.sort();
}

const isNonEmptyString = (value: unknown) => typeof value === 'string' && value.trim().length > 0;

/** Checks one file's text; `file` names it in the findings. */
export async function checkConventionsOf(file: string, text: string): Promise<ConventionFinding[]> {
  const parsed = (await parse(file, text)) as ParsedFile;
  const findings: ConventionFinding[] = [];
  const add = (block: string, problem: string) => findings.push({ file, block, problem });
  const named = (value: unknown) => Object.entries((value ?? {}) as Record<string, unknown[]>);

  for (const [name, [body]] of named(parsed.variable) as [string, Record<string, unknown>[]][]) {
    const block = `variable "${name}"`;
    if (!SNAKE_CASE.test(name)) add(block, 'name is not snake_case');
    if (!body || !isNonEmptyString(body.type)) add(block, 'has no type');
    if (!body || !isNonEmptyString(body.description)) add(block, 'has no description');
  }
  for (const [name, [body]] of named(parsed.output) as [string, Record<string, unknown>[]][]) {
    const block = `output "${name}"`;
    if (!SNAKE_CASE.test(name)) add(block, 'name is not snake_case');
    if (!body || !isNonEmptyString(body.description)) add(block, 'has no description');
  }
  for (const [name] of named(parsed.module)) {
    if (!SNAKE_CASE.test(name)) add(`module "${name}"`, 'name is not snake_case');
  }
  for (const locals of (parsed.locals ?? []) as Record<string, unknown>[]) {
    for (const name of Object.keys(locals)) {
      if (!SNAKE_CASE.test(name)) add(`local.${name}`, 'name is not snake_case');
    }
  }
  for (const kind of ['resource', 'data'] as const) {
    for (const [type, instances] of Object.entries(parsed[kind] ?? {})) {
      for (const name of Object.keys(instances)) {
        if (!SNAKE_CASE.test(name)) add(`${kind} "${type}" "${name}"`, 'name is not snake_case');
      }
    }
  }
  return findings;
}

/** Checks every `*.tf` file under `dir`. */
export async function checkConventions(dir: string): Promise<ConventionFinding[]> {
  const findings: ConventionFinding[] = [];
  for (const path of terraformFiles(dir)) {
    findings.push(...(await checkConventionsOf(relative(dir, path), readFileSync(path, 'utf8'))));
  }
  return findings;
}
