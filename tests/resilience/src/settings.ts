import { type Static, Type } from '@sinclair/typebox';

const MiB = 1024 * 1024;

/**
 * Settings of `npm run test:resilience`; every key is the environment variable of the same name.
 * The defaults are sized for CI on a 2-core machine (the whole suite in a few minutes); the README
 * says how to run it bigger.
 */
export const ResilienceSettings = Type.Object({
  /** Scenarios to run, comma-separated (R5, R4, R1, R6, R8, R16, R17); all when empty. */
  RESILIENCE_ONLY: Type.String({ default: '' }),
  /** The whole suite must finish within this; a scenario that would start after it is reported as not run. */
  RESILIENCE_BUDGET_SECONDS: Type.Integer({ default: 900, minimum: 60 }),
  /** Where the ledger, the stack's log and the results go; a new folder under the system temp folder when empty. */
  RESILIENCE_OUTPUT_DIR: Type.String({ default: '' }),
  /** LOG_LEVEL of the stack's processes (their output goes to the stack log). */
  RESILIENCE_STACK_LOG_LEVEL: Type.String({ default: 'warn' }),

  /** R5: concurrent clients, each its own user. */
  RESILIENCE_CLIENTS: Type.Integer({ default: 64, minimum: 1 }),
  /** R5: how long the clients keep starting uploads, in seconds. */
  RESILIENCE_LOAD_SECONDS: Type.Integer({ default: 30, minimum: 1 }),
  /** R5: one-way delay the fault proxy adds between the services and the emulator, in ms (S3 is not next door). */
  RESILIENCE_AWS_LATENCY_MS: Type.Integer({ default: 5, minimum: 0 }),
  /** Size of the "5 MiB +/- 1" files (one part more or less than lib-storage's minimum). */
  RESILIENCE_MEDIUM_BYTES: Type.Integer({ default: 5 * MiB, minimum: 2 }),
  /** Size of the large files. */
  RESILIENCE_LARGE_BYTES: Type.Integer({ default: 64 * MiB, minimum: 1 }),

  /**
   * Clients that send a large file the service refuses early (over the limit, anonymous) send at
   * this rate, in bytes per second: a fast uplink. On loopback an unpaced client can outrun the
   * server's reading of the rest of an answered body, and lose the answer to the reset that ends it.
   */
  RESILIENCE_REFUSED_UPLOAD_BYTES_PER_SECOND: Type.Integer({ default: 10 * MiB, minimum: 1024 }),
  /** R4: connections of the slow-loris client, and how long it keeps them open, in seconds. */
  RESILIENCE_SLOW_CLIENTS: Type.Integer({ default: 48, minimum: 1 }),
  RESILIENCE_SLOW_SECONDS: Type.Integer({ default: 15, minimum: 1 }),
  /**
   * The stack's UPLOADS_PER_MINUTE (per user). R4's rate flood sends this many uploads plus
   * RESILIENCE_FLOOD_REQUESTS at once, and every admitted one costs the single-process emulator
   * about ten requests (its DynamoDB requests applied one at a time). At the service's default of
   * 120, 152 uploads at once on a loaded 2-core machine kept requests waiting longer than the local
   * stack's 15 s for a connection to the emulator: 503 STORAGE_UNAVAILABLE, right for a stalled
   * backend but not what the flood tests (the limit answering 429 beyond it, under a burst).
   */
  RESILIENCE_UPLOADS_PER_MINUTE: Type.Integer({ default: 60, minimum: 2 }),
  /** R4: requests per flood (each flood is one user's: below its upload rate limit, so the limit under test answers). */
  RESILIENCE_FLOOD_REQUESTS: Type.Integer({ default: 32, minimum: 1, maximum: 100 }),

  /** R1 and R6: how long the emulator (or backup-sync's way to it) stays unreachable, in seconds. */
  RESILIENCE_OUTAGE_SECONDS: Type.Integer({ default: 6, minimum: 1 }),
  /** R1, R6/R7: concurrent clients during the fault. */
  RESILIENCE_FAULT_CLIENTS: Type.Integer({ default: 12, minimum: 1 }),

  /** R8: uploads in flight when the upload service gets SIGTERM, and their size. */
  RESILIENCE_LONG_UPLOADS: Type.Integer({ default: 20, minimum: 1 }),
  RESILIENCE_LONG_UPLOAD_BYTES: Type.Integer({ default: 4 * MiB, minimum: 1 }),
  /** R8: the upload service's bandwidth to the emulator (through the fault proxy), per connection, in bytes per second. */
  RESILIENCE_LONG_UPLOAD_BANDWIDTH: Type.Integer({ default: 1 * MiB, minimum: 1024 }),

  /**
   * R16: uploads in flight (each its own user, paced) when the upload service is killed (SIGKILL),
   * their size (below one S3 part, so a killed one has sent S3 nothing yet) and pace.
   */
  RESILIENCE_KILLED_UPLOADS: Type.Integer({ default: 8, minimum: 1 }),
  RESILIENCE_KILLED_UPLOAD_BYTES: Type.Integer({ default: 2 * MiB, minimum: 1024 }),
  RESILIENCE_KILLED_UPLOAD_BYTES_PER_SECOND: Type.Integer({ default: 128 * 1024, minimum: 1024 }),

  /**
   * R17: size of the resumable direct upload (5 GiB: the size of a file whose SHA-256 S3 can still
   * compute), in bytes. At 5 GiB R17 took 713 s on the 2-core machine under a load of 4-8 (2026-12-07):
   * parts 253 s, complete 265 s (the emulator assembles the parts in memory, then copies the object to
   * compute its SHA-256), download 111 s, backup and checks 84 s; the emulator peaked at 15 GiB RSS and
   * its temp files at +30 GiB of disk. A smaller size shortens it in proportion.
   */
  RESILIENCE_RESUMABLE_BYTES: Type.Integer({ default: 5 * 1024 * MiB, minimum: 16 }),
  /** R17: link drops (TCP resets halfway through a part) during that upload. */
  RESILIENCE_RESUMABLE_DROPS: Type.Integer({ default: 3, minimum: 0 }),

  /** After each scenario: longest wait for the stack to settle (backups, moves, memory) before the checks count. */
  RESILIENCE_SETTLE_SECONDS: Type.Integer({ default: 90, minimum: 1 }),
  /**
   * After settling, a process's memory (services: V8 heap used + external, from their /metrics;
   * gateway and mover: RSS) may exceed its baseline by this factor plus RESILIENCE_MEMORY_SLACK_MIB;
   * during R4's floods a process's RSS may grow by at most RESILIENCE_MEMORY_SLACK_MIB.
   */
  RESILIENCE_MEMORY_FACTOR: Type.Number({ default: 1.5, minimum: 1 }),
  RESILIENCE_MEMORY_SLACK_MIB: Type.Integer({ default: 96, minimum: 0 }),
});
export type ResilienceSettings = Static<typeof ResilienceSettings>;

export const SCENARIO_IDS = ['R5', 'R4', 'R1', 'R6', 'R8', 'R16', 'R17'] as const;
export type ScenarioId = (typeof SCENARIO_IDS)[number];
