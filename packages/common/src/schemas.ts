import { Type } from '@sinclair/typebox';

/** Fastify's error shape with the product's stable code: every 4xx/5xx response schema uses it. */
export const ErrorResponse = Type.Object(
  {
    statusCode: Type.Integer(),
    code: Type.String({ description: 'Stable machine-readable error code' }),
    error: Type.String(),
    message: Type.String({ description: 'What went wrong, in words a person can act on' }),
  },
  { $id: 'ErrorResponse', description: 'Error' },
);

/**
 * The response schemas of a route's error statuses, each the product's error shape:
 * `response: { 200: View, ...errorResponses(400, 401, 404) }`.
 */
export function errorResponses(...statuses: number[]): Record<number, typeof ErrorResponse> {
  return Object.fromEntries(statuses.map((status) => [status, ErrorResponse]));
}
