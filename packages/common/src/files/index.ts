/**
 * The file domain, one module per concept: `record` (a file's record, its item mapping and its
 * view), `keys` (where a file lives: object keys in S3, item keys in the files table), `tags` (its
 * object tags), `repository` (`FileRepository`: the records) and `usage` (`UsageRepository`:
 * reservations, their settlement, the counters and their reconciliation). Imported as
 * `@scs/common/files`.
 */
export * from './keys';
export * from './record';
export * from './repository';
export * from './tags';
export * from './usage';
