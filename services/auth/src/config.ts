import { baseConfigProperties, portProperty, resourceNameProperties } from '@scs/common';
import { type Static, Type } from '@sinclair/typebox';

const { USERS_TABLE, SESSIONS_TABLE, THROTTLE_TABLE, JWT_SIGNING_KEY_PARAM, SECRETS_KMS_KEY_ID } = resourceNameProperties;

/** The auth service's configuration; every key is the environment variable of the same name. */
export const AuthConfig = Type.Object({
  ...baseConfigProperties,
  PORT: portProperty(3001),
  USERS_TABLE,
  SESSIONS_TABLE,
  THROTTLE_TABLE,
  JWT_SIGNING_KEY_PARAM,
  SECRETS_KMS_KEY_ID,
  ACCESS_TOKEN_TTL_SECONDS: Type.Integer({ default: 900, minimum: 60, maximum: 900 }),
  REFRESH_TOKEN_TTL_SECONDS: Type.Integer({ default: 14 * 24 * 3600, minimum: 300 }),
  /**
   * How long a refresh token that was just rotated still answers with its successor, so parallel
   * refreshes of one session (two tabs, several requests) do not look like token theft. 0 = none.
   */
  REFRESH_REUSE_GRACE_SECONDS: Type.Integer({ default: 10, minimum: 0, maximum: 60 }),
  SESSION_MAX_SECONDS: Type.Integer({ default: 30 * 24 * 3600, minimum: 300 }),
  COOKIE_SECURE: Type.Boolean({ default: true }),
  /** Origins the browser UI is served from; a cookie-authenticated request from elsewhere is refused. */
  ALLOWED_ORIGINS: Type.String({ default: '' }),
  LOGIN_MAX_FAILURES_PER_ACCOUNT: Type.Integer({ default: 5, minimum: 1 }),
  LOGIN_MAX_FAILURES_PER_ADDRESS: Type.Integer({ default: 50, minimum: 1 }),
  /**
   * Failed sign-ins allowed per window from a device the account has signed in from before (its
   * `scs_device` cookie): such a device is counted on its own, not locked out with the account.
   */
  LOGIN_MAX_FAILURES_PER_DEVICE: Type.Integer({ default: 5, minimum: 1 }),
  LOGIN_THROTTLE_WINDOW_SECONDS: Type.Integer({ default: 900, minimum: 1 }),
  /** How long a device stays known to an account after a successful sign-in from it (the device cookie's lifetime). */
  DEVICE_COOKIE_MAX_AGE_SECONDS: Type.Integer({ default: 90 * 24 * 3600, minimum: 3600, maximum: 400 * 24 * 3600 }),
  /** Registrations per client address, shared by every instance: a burst per minute, and per hour. */
  REGISTER_RATE_LIMIT_PER_MINUTE: Type.Integer({ default: 10, minimum: 1 }),
  REGISTER_RATE_LIMIT_PER_HOUR: Type.Integer({ default: 30, minimum: 1 }),
  /** Refreshes per client address per minute, shared by every instance. */
  REFRESH_RATE_LIMIT_PER_MINUTE: Type.Integer({ default: 60, minimum: 1 }),
  /** Password hashes computed at once; more wait in a bounded queue, beyond it the answer is 503. */
  HASH_CONCURRENCY: Type.Integer({ default: 2, minimum: 1, maximum: 64 }),
  HASH_QUEUE_LIMIT: Type.Integer({ default: 64, minimum: 0 }),
  /**
   * Password hashes in flight (queued or running) per account and per client address in one
   * process; one more is answered 429 at once, before it is queued.
   */
  HASH_CONCURRENCY_PER_ACCOUNT: Type.Integer({ default: 2, minimum: 1, maximum: 100_000 }),
  HASH_CONCURRENCY_PER_ADDRESS: Type.Integer({ default: 4, minimum: 1, maximum: 100_000 }),
  /** argon2id cost (AU-01): at least OWASP's minimum (19 MiB, t=2, p=1). */
  ARGON2_MEMORY_KIB: Type.Integer({ default: 19_456, minimum: 19_456 }),
  ARGON2_TIME_COST: Type.Integer({ default: 2, minimum: 2 }),
  /** The admin account seeded at start-up (with SCS_ADMIN_PASSWORD); its name cannot be registered. */
  SCS_ADMIN_USERNAME: Type.Optional(Type.String({ minLength: 1 })),
  /** Lets seeding turn an existing non-admin account into the admin (ending its sessions). */
  SCS_ADMIN_PROMOTE_EXISTING: Type.Boolean({ default: false }),
});
export type AuthConfig = Static<typeof AuthConfig>;
