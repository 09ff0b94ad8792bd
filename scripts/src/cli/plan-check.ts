import { readFileSync } from 'node:fs';
import { PlanFormatError, planVerdict, statefulChanges } from '../pipeline/plan-check';

/**
 * `node scripts/dist/cli/plan-check.js <plan.json>`: exit 1 when the plan destroys or replaces a
 * stateful resource (scripts/src/pipeline/plan-check.ts) and ALLOW_STATEFUL_CHANGES is not
 * `true`; exit 2 when the file is missing or not a Terraform JSON plan; 0 otherwise.
 */
function main(argv: string[], env: NodeJS.ProcessEnv): number {
  const file = argv[0];
  if (!file) {
    console.error('usage: plan-check <plan.json>   (terraform show -json tfplan > plan.json)');
    return 2;
  }
  try {
    const verdict = planVerdict(statefulChanges(JSON.parse(readFileSync(file, 'utf8'))), env.ALLOW_STATEFUL_CHANGES === 'true');
    for (const line of verdict.lines) (verdict.code === 0 ? console.log : console.error)(line);
    return verdict.code;
  } catch (err) {
    const message = err instanceof PlanFormatError || err instanceof SyntaxError ? err.message : (err as Error).message;
    console.error(`plan-check: cannot read ${file}: ${message}`);
    return 2;
  }
}

process.exitCode = main(process.argv.slice(2), process.env);
