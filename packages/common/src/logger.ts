import type { LoggerOptions } from 'pino';

/**
 * What the product's classes write log lines to: pino's call shape, structured fields first and
 * the message second. pino's `Logger` (and so `app.log` and `request.log`) is one. A class asks
 * only for the levels it writes, as `Pick<Logger, 'warn' | 'error'>`, so a test or a benchmark can
 * pass a small object of its own.
 */
export interface Logger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Paths that must never reach a log line, whatever a handler passes to the logger. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  '*.password',
  '*.accessToken',
  '*.refreshToken',
  '*.privateKey',
];

/**
 * pino options shared by every service: JSON lines, secrets redacted, pretty output only when a
 * person is watching a terminal.
 */
export function loggerOptions(level: string, opts: { pretty?: boolean } = {}): LoggerOptions {
  const options: LoggerOptions = {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  if (opts.pretty) {
    options.transport = { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } };
  }
  return options;
}
