import { FormatRegistry, type Static, type TObject, type TProperties, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { isIP } from 'node:net';

/** A start-up configuration error: names the variable and what is wrong with it. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    detail: string,
  ) {
    super(`Invalid configuration: ${variable} ${detail}`);
    this.name = 'ConfigError';
  }
}

/** proxy-addr's names for address ranges, accepted in TRUSTED_PROXIES beside addresses and CIDRs. */
const PROXY_RANGE_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * True when `value` is a comma-separated list (possibly empty) of IP addresses, CIDRs
 * (`10.0.0.0/20`, `::1/128`) or proxy-addr's range names: what Fastify's `trustProxy` accepts.
 */
export function isProxyList(value: string): boolean {
  return splitList(value).every((entry) => {
    if (PROXY_RANGE_NAMES.has(entry)) return true;
    const [address = '', prefix, ...rest] = entry.split('/');
    const family = isIP(address);
    if (family === 0 || rest.length > 0) return false;
    if (prefix === undefined) return true;
    return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
  });
}
FormatRegistry.Set('proxy-list', isProxyList);

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * Settings every service shares. Each key is the environment variable of the same name, so an
 * error can always name the variable an operator has to fix.
 */
export const baseConfigProperties = {
  HOST: Type.String({ default: '0.0.0.0', minLength: 1 }),
  LOG_LEVEL: Type.Union(
    LOG_LEVELS.map((l) => Type.Literal(l)),
    { default: 'info' },
  ),
  AWS_REGION: Type.String({ default: 'us-east-1', minLength: 1 }),
  AWS_ENDPOINT_URL: Type.Optional(Type.String({ pattern: '^https?://[^\\s]+$' })),
  AWS_MAX_ATTEMPTS: Type.Integer({ default: 3, minimum: 1, maximum: 10 }),
  AWS_REQUEST_TIMEOUT_MS: Type.Integer({ default: 10_000, minimum: 100 }),
  /**
   * Longest wait, in ms, for a connection to AWS (or the emulator) to open, a free pooled socket
   * included. 3 s fits AWS; the local stack raises it, as the single-process emulator can take
   * longer to accept connections under a flood of uploads.
   */
  AWS_CONNECT_TIMEOUT_MS: Type.Integer({ default: 3_000, minimum: 100 }),
  /**
   * Addresses or CIDRs of the proxies (the ALB subnets, the dev gateway) whose X-Forwarded-For and
   * X-Forwarded-Host are believed (AU-06); from any other peer they are ignored.
   */
  TRUSTED_PROXIES: Type.String({ default: '127.0.0.1/32,::1/128', format: 'proxy-list' }),
  JWT_ISSUER: Type.String({ default: 'scs-auth', minLength: 1 }),
  JWT_AUDIENCE: Type.String({ default: 'scs', minLength: 1 }),
  JWT_PUBLIC_KEYS_PARAM: Type.String({ default: '/scs/auth/jwt-public-keys', pattern: '^/' }),
  KEY_REFRESH_SECONDS: Type.Integer({ default: 60, minimum: 1 }),
  SHUTDOWN_GRACE_MS: Type.Integer({ default: 25_000, minimum: 0 }),
} satisfies TProperties;

/**
 * Settings of the services that copy files between buckets (backup-sync, the sensitive mover, the
 * upload service), each passed to ServerSideCopier.
 */
export const copyConfigProperties = {
  /**
   * Files larger than this, in bytes, are copied in parts (UploadPartCopy) instead of one
   * CopyObject. Default and maximum 5368709120 (5 GiB: S3's CopyObject limit); minimum 5242880
   * (5 MiB: S3's smallest part). Lowered only to run the paths of larger files on small ones.
   */
  COPY_IN_PARTS_ABOVE_BYTES: Type.Integer({ default: 5 * 1024 ** 3, minimum: 5 * 1024 ** 2, maximum: 5 * 1024 ** 3 }),
} satisfies TProperties;

export const BaseConfig = Type.Object(baseConfigProperties);
export type BaseConfig = Static<typeof BaseConfig>;

/** The port property every service declares with its own default. */
export const portProperty = (defaultPort: number) =>
  Type.Integer({ default: defaultPort, minimum: 1, maximum: 65535 });

/**
 * Reads, converts and validates configuration from an environment-like record. Unknown keys are
 * ignored; defaults are applied; the first invalid value throws a ConfigError naming the variable.
 */
export function loadConfig<T extends TObject>(schema: T, env: Record<string, string | undefined>): Static<T> {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(schema.properties)) {
    const value = env[key];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  const withDefaults = Value.Default(schema, raw);
  const converted = Value.Convert(schema, withDefaults);
  const first = Value.Errors(schema, converted).First();
  if (first) {
    const variable = first.path.replace(/^\//, '').split('/')[0] || '(configuration)';
    const value = (converted as Record<string, unknown>)[variable];
    const detail =
      value === undefined ? 'is required' : `has an invalid value ${JSON.stringify(value)}: ${first.message}`;
    throw new ConfigError(variable, detail);
  }
  return converted as Static<T>;
}

/** Comma-separated list helper for settings like TRUSTED_PROXIES. */
export function splitList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
