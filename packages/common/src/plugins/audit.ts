import type { FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';

export type AuditOutcome = 'success' | 'failure' | 'denied';

export interface AuditFields {
  /** The account concerned, when known (never a password, token or key). */
  userId?: string | undefined;
  username?: string | undefined;
  reason?: string | undefined;
  [key: string]: string | number | boolean | undefined;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Writes one structured audit line for a security event of this request. */
    audit(event: string, outcome: AuditOutcome, fields?: AuditFields): void;
  }
}

const FORBIDDEN_KEYS = /pass|token|secret|key|cookie|authorization/i;

/**
 * The audit log: one JSON line per security event with the event, outcome, user, client address
 * and request id. Field names that look like secrets are dropped rather than trusted to callers.
 */
export const auditPlugin = fp(
  async function audit(app) {
    app.decorateRequest('audit', function (this: FastifyRequest, event: string, outcome: AuditOutcome, fields: AuditFields = {}) {
      const safe: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(fields)) if (v !== undefined && !FORBIDDEN_KEYS.test(k)) safe[k] = v;
      if (!safe.userId && this.user && typeof this.user === 'object' && 'sub' in this.user) safe.userId = this.user.sub;
      this.log.info(
        { audit: { event, outcome, ...safe, clientIp: this.ip, requestId: this.id } },
        `audit ${event} ${outcome}`,
      );
    });
  },
  { name: 'scs-audit', fastify: '5.x', dependencies: [] },
);
