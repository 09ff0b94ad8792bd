import { baseConfigProperties, copyConfigProperties } from '@scs/common/config';
import { resourceNameProperties } from '@scs/common/resources';
import { type Static, Type } from '@sinclair/typebox';

const { LOG_LEVEL, AWS_REGION, AWS_ENDPOINT_URL, AWS_MAX_ATTEMPTS, AWS_REQUEST_TIMEOUT_MS } = baseConfigProperties;
const { PRIMARY_BUCKET, SENSITIVE_BUCKET, SENSITIVE_KMS_KEY_ID, FILES_TABLE, OBJECT_EVENTS_QUEUE } = resourceNameProperties;

/**
 * The Lambda's configuration; every key is the environment variable of the same name. On AWS only
 * the resource names and LOG_LEVEL are set (no secrets); the rest keep their defaults.
 */
export const MoverConfig = Type.Object({
  LOG_LEVEL,
  AWS_REGION,
  AWS_ENDPOINT_URL,
  AWS_MAX_ATTEMPTS,
  AWS_REQUEST_TIMEOUT_MS,
  PRIMARY_BUCKET,
  SENSITIVE_BUCKET,
  SENSITIVE_KMS_KEY_ID,
  FILES_TABLE,
  /**
   * How long one invocation waits for the upload service to finish a file it has just created (the
   * SHA-256 and the record arrive a moment after the object) before failing, so it is retried.
   */
  MOVER_RECORD_WAIT_MS: Type.Integer({ default: 20_000, minimum: 0 }),
  /** Above this size (bytes) a file is copied into the vault in parts. */
  COPY_IN_PARTS_ABOVE_BYTES: copyConfigProperties.COPY_IN_PARTS_ABOVE_BYTES,
});
export type MoverConfig = Static<typeof MoverConfig>;

/** The local runner's own settings: the queue it polls and how it mirrors Lambda's asynchronous invocation. */
export const RunnerConfig = Type.Object({
  ...MoverConfig.properties,
  OBJECT_EVENTS_QUEUE,
  /** Attempts per event, the first included (Lambda: 1 + 2 retries), before it goes to the dead-letter queue. */
  MOVER_MAX_ATTEMPTS: Type.Integer({ default: 3, minimum: 1, maximum: 10 }),
  /** Delay before the first retry; each further retry waits twice as long (Lambda: about 1 and 2 minutes). */
  MOVER_RETRY_DELAY_SECONDS: Type.Integer({ default: 60, minimum: 0, maximum: 43_200 }),
  /** Events handled at once (Lambda: the function's reserved concurrency). */
  MOVER_CONCURRENCY: Type.Integer({ default: 4, minimum: 1, maximum: 100 }),
  /** How long one invocation may take (Lambda: the function timeout); the event is hidden from other pollers meanwhile. */
  MOVER_TIMEOUT_SECONDS: Type.Integer({ default: 300, minimum: 1, maximum: 43_200 }),
  /** Long-poll wait of each receive (at most 20 s); stopping waits for the receive under way. */
  MOVER_POLL_SECONDS: Type.Integer({ default: 5, minimum: 0, maximum: 20 }),
});
export type RunnerConfig = Static<typeof RunnerConfig>;
