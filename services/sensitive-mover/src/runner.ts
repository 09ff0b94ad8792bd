import { GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import { deadLetterQueueName, loadConfig, loggerOptions, wantsPrettyLogs } from '@scs/common';
import pino from 'pino';
import { RunnerConfig } from './config';
import { handlerFromEnv } from './handler';
import { LocalLambdaRunner } from './local-runner';

/**
 * `node dist/runner.js` (started by `npm start` and docker compose): the local stand-in for the
 * Lambda. It invokes the same handler as the deployed function, in-process, for every
 * notification the primary bucket sends to OBJECT_EVENTS_QUEUE, with Lambda's retry behaviour.
 * SIGTERM/SIGINT stop polling and let running invocations finish.
 */
async function main(): Promise<void> {
  const config = loadConfig(RunnerConfig, process.env);
  const log = pino(loggerOptions(config.LOG_LEVEL, { pretty: wantsPrettyLogs(process.stdout) }));
  const { handler, destroy } = handlerFromEnv(process.env);
  // Its own client: a long poll outlasts the shared clients' request timeout (AWS_REQUEST_TIMEOUT_MS).
  const sqs = new SQSClient({
    region: config.AWS_REGION,
    maxAttempts: config.AWS_MAX_ATTEMPTS,
    ...(config.AWS_ENDPOINT_URL ? { endpoint: config.AWS_ENDPOINT_URL } : {}),
  });
  const url = async (name: string) => {
    const out = await sqs.send(new GetQueueUrlCommand({ QueueName: name }));
    if (!out.QueueUrl) throw new Error(`queue ${name} has no URL`);
    return out.QueueUrl;
  };
  const runner = new LocalLambdaRunner({
    sqs,
    queueUrl: await url(config.OBJECT_EVENTS_QUEUE),
    deadLetterQueueUrl: await url(deadLetterQueueName(config.OBJECT_EVENTS_QUEUE)),
    handler,
    functionName: 'sensitive-mover',
    maxAttempts: config.MOVER_MAX_ATTEMPTS,
    retryDelaySeconds: config.MOVER_RETRY_DELAY_SECONDS,
    concurrency: config.MOVER_CONCURRENCY,
    timeoutSeconds: config.MOVER_TIMEOUT_SECONDS,
    pollSeconds: config.MOVER_POLL_SECONDS,
    log,
  });
  runner.start();
  log.info({ queue: config.OBJECT_EVENTS_QUEUE, concurrency: config.MOVER_CONCURRENCY }, 'sensitive-mover runner polling');

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, ...runner.stats }, 'sensitive-mover runner stopping');
    void runner.stop().then(() => {
      sqs.destroy();
      destroy();
      process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`sensitive-mover runner failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
