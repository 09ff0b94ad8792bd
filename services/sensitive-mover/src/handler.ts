import { createAwsClients } from '@scs/common/aws';
import { loadConfig } from '@scs/common/config';
import { loggerOptions } from '@scs/common/logger';
import { ServerSideCopier } from '@scs/common/s3-copy';
import { FileRepository } from '@scs/common/files';
import type { Context } from 'aws-lambda';
import pino, { type Logger } from 'pino';
import { MoverConfig } from './config';
import { createdObjects } from './events';
import { type MoveOutcome, SensitiveMover } from './mover';

/** What one invocation did, per object of the event (returned to the caller and logged). */
export interface MoveReport {
  results: { key: string; versionId?: string | undefined; outcome: MoveOutcome }[];
}

/** The minimum of Lambda's context the handler uses (the local runner builds the same). */
export type InvocationContext = Pick<Context, 'awsRequestId'> & Partial<Context>;

export type MoveHandler = (event: unknown, context?: InvocationContext) => Promise<MoveReport>;

/**
 * A handler around one SensitiveMover. Objects of an event are handled one after the other; the
 * first failure fails the invocation (nothing half-done is lost: every step is repeatable), so
 * Lambda retries it and finally hands it to the on-failure destination.
 */
export function createHandler(mover: SensitiveMover, log: Logger): MoveHandler {
  return async (event, context) => {
    const requestLog = log.child({ awsRequestId: context?.awsRequestId });
    const results: MoveReport['results'] = [];
    for (const object of createdObjects(event)) {
      const started = Date.now();
      const base = { bucket: object.bucket, key: object.key, versionId: object.versionId };
      try {
        const outcome = await mover.move(object);
        results.push({ key: object.key, versionId: object.versionId, outcome });
        requestLog.info({ ...base, outcome, ms: Date.now() - started }, `sensitive mover: ${outcome}`);
      } catch (err) {
        requestLog.error({ ...base, err, ms: Date.now() - started }, 'sensitive mover: failed; the event will be retried');
        throw err;
      }
    }
    return { results };
  };
}

/** Builds everything from the environment: validation and clients only, no I/O (Lambda init). */
export function handlerFromEnv(env: NodeJS.ProcessEnv): { handler: MoveHandler; config: MoverConfig; destroy(): void } {
  const config = loadConfig(MoverConfig, env);
  const log = pino(loggerOptions(config.LOG_LEVEL));
  const aws = createAwsClients(config);
  const mover = new SensitiveMover(config, {
    s3: aws.s3,
    copier: new ServerSideCopier(aws.s3, aws.kms, { multipartAboveBytes: config.COPY_IN_PARTS_ABOVE_BYTES }),
    files: new FileRepository(aws.dynamo, config.FILES_TABLE, log),
    log,
  });
  return { handler: createHandler(mover, log), config, destroy: () => aws.destroy() };
}

let built: ReturnType<typeof handlerFromEnv> | undefined;

/**
 * The Lambda entry point (`index.handler` in the bundle): the primary bucket's ObjectCreated
 * notifications (prefix users/). Clients are created once per execution environment, lazily, so
 * a configuration error fails the invocation (and reaches the on-failure destination) with a
 * message naming the variable.
 */
export const handler: MoveHandler = async (event, context) => {
  built ??= handlerFromEnv(process.env);
  return built.handler(event, context);
};
