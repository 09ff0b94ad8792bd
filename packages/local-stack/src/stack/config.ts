import { baseConfigProperties, portProperty } from '@scs/common';
import { type Static, Type } from '@sinclair/typebox';

/**
 * Settings of `npm start`. GATEWAY_PORT is a product knob (the product contract); the others are development
 * knobs, mainly so tests and a second checkout can run a stack beside a developer's own.
 */
export const StackConfig = Type.Object({
  GATEWAY_PORT: portProperty(8080),
  EMULATOR_PORT: portProperty(4566),
  AUTH_PORT: portProperty(3001),
  UPLOAD_PORT: portProperty(3002),
  BACKUP_PORT: portProperty(3003),
  /** Where the services and the gateway listen: loopback only unless asked (plain HTTP, test credentials). */
  STACK_HOST: Type.String({ default: '127.0.0.1', minLength: 1 }),
  STACK_START_TIMEOUT_MS: Type.Integer({ default: 120_000, minimum: 1_000 }),
  /** How long a child may take to stop after SIGTERM before it is killed. */
  STACK_STOP_GRACE_MS: Type.Integer({ default: 10_000, minimum: 0 }),
  LOG_LEVEL: baseConfigProperties.LOG_LEVEL,
});
export type StackConfig = Static<typeof StackConfig>;

export const STACK_HELP = `Usage: npm start

Starts the local stack: the AWS emulator (moto) on 127.0.0.1:$EMULATOR_PORT, provisions it
(idempotent), then auth, upload, backup-sync, the sensitive mover's runner (the Lambda handler,
fed by the primary bucket's notifications) and the gateway, and prints the URL. Ctrl-C or
SIGTERM stops every process; if one of them dies, everything stops and the exit code is 1.

Environment:
  GATEWAY_PORT            the gateway (stands in for the ALB)                 default 8080
  SCS_ADMIN_USERNAME, SCS_ADMIN_PASSWORD
                          when both are set, that admin is created or updated at start-up
  MAX_UPLOAD_BYTES, QUOTA_BYTES, and every other service setting are passed to the services
  MOVER_RETRY_DELAY_SECONDS, MOVER_MAX_ATTEMPTS, ...   the runner's retries (like Lambda: 60 s, 3 attempts)
  LOG_LEVEL               fatal | error | warn | info | debug | trace | silent  default info
                          (debug and trace also show the emulator's request log)

Development knobs:
  EMULATOR_PORT           the AWS emulator                                    default 4566
  AUTH_PORT, UPLOAD_PORT, BACKUP_PORT   the services                   default 3001, 3002, 3003
  STACK_HOST              listen address of the services and the gateway      default 127.0.0.1
  STACK_START_TIMEOUT_MS  how long each start-up stage may take               default 120000
  STACK_STOP_GRACE_MS     SIGTERM-to-SIGKILL delay when stopping              default 10000
  PYTHON                  the Python that has moto (else python3, else .venv/)
`;
