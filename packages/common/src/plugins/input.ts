import createError from '@fastify/error';
import fp from 'fastify-plugin';

const InvalidInput = createError('VALIDATION_FAILED', '%s', 400);

/** A lone UTF-16 surrogate: not a character, cannot be stored as UTF-8 (DynamoDB, S3 metadata refuse it). */
const LONE_SURROGATE = /\p{Cs}/u;

/** The first place in `value` (a parsed body, query or params) that holds input no schema refuses but no store accepts. */
function findIllFormed(value: unknown, where: string, numbers: boolean): string | undefined {
  // Iterative: a JSON body may nest thousands of levels deep.
  const pending: [unknown, string][] = [[value, where]];
  while (pending.length > 0) {
    const [item, path] = pending.pop() as [unknown, string];
    if (typeof item === 'string') {
      if (LONE_SURROGATE.test(item)) return `${path} must be well-formed Unicode text`;
    } else if (typeof item === 'number') {
      if (numbers && !Number.isFinite(item)) return `${path} must be a finite number`;
    } else if (item !== null && typeof item === 'object') {
      for (const [key, child] of Object.entries(item)) {
        if (LONE_SURROGATE.test(key)) return `${path} has a name that is not well-formed Unicode`;
        pending.push([child, `${path}/${key}`]);
      }
    }
  }
  return undefined;
}

/**
 * Input that passes the route schemas but that no store accepts, refused as 400 VALIDATION_FAILED
 * after validation (before any handler): strings with lone UTF-16 surrogates (`"\ud800"` is valid
 * JSON, but DynamoDB and S3 refuse it, which would surface as a 503), and non-finite numbers that
 * schema coercion lets through from query strings and paths (`?limit=Infinity` passes
 * `maximum: 100`).
 */
export const inputPlugin = fp(
  async function input(app) {
    app.addHook('preHandler', async (request) => {
      const problem =
        findIllFormed(request.query, 'querystring', true) ?? findIllFormed(request.params, 'params', true) ?? findIllFormed(request.body, 'body', false);
      if (problem) throw new InvalidInput(problem);
    });
  },
  { name: 'scs-input', fastify: '5.x' },
);
