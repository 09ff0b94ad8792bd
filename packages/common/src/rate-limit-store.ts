import { PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { FastifyBaseLogger } from 'fastify';
import { isConditionFailed } from './dynamo';

/** What a rate-limit store answers for one request: hits in the key's window (this one included) and ms until it ends. */
export interface RateLimitHit {
  current: number;
  ttl: number;
}

export interface SharedRateLimitSettings {
  db: DynamoDBDocumentClient;
  /** The table (`THROTTLE_TABLE`: hash key `pk`, TTL attribute `expiresAt`). */
  table: string;
  /** Keeps services apart in the shared table (`auth`, `upload`). */
  service: string;
  log: FastifyBaseLogger;
  /** Clock in epoch ms (fake time in tests). */
  now?: () => number;
}

/** A number attribute of the item a failed condition returns (raw `{N: "..."}` or unmarshalled). */
function numberOf(item: Record<string, unknown> | undefined, name: string): number {
  const value = item?.[name];
  return Number(typeof value === 'object' && value !== null && 'N' in value ? value.N : (value ?? Number.NaN));
}

/** How often a store that keeps failing says so in the log, in ms. */
const FAILURE_LOG_INTERVAL_MS = 60_000;
/** Keys the per-process fallback remembers before it starts over (it only matters during an outage). */
const FALLBACK_MAX_KEYS = 10_000;

/**
 * Fixed-window request counters shared by every instance of a service, in DynamoDB: one item per
 * route and key (`rl#{service}#{route}#{key}`) holding the hits and the end of the window, which
 * starts with the key's first request (as @fastify/rate-limit's own stores do) and whose item expires
 * through TTL afterwards.
 *
 * Cost: one conditional `UpdateItem` per request. It counts the hit while the window is open and the
 * key is under its limit, or opens the window for a key that has no item yet; a hit over the limit is
 * not counted (the item stops growing during a flood). Only the first request after a window has
 * ended costs a second write (a conditional update that starts the next window; when several
 * instances race, one starts it and the others count in it).
 *
 * Failure: when DynamoDB cannot be reached (or refuses: a missing permission), the store **falls
 * back to a per-process count of the same limit**, so the service neither refuses everyone nor drops
 * the limit: an outage turns the shared limit back into the per-process one (N instances allow N
 * times the limit), and the failure is logged (at most once a minute).
 */
export class SharedRateLimitStore {
  private readonly now: () => number;
  private readonly fallback = new Map<string, { hits: number; windowEnds: number }>();
  private lastFailureLog = Number.NEGATIVE_INFINITY;

  constructor(private readonly settings: SharedRateLimitSettings) {
    this.now = settings.now ?? Date.now;
  }

  /**
   * Counts one request for `key` (route and key, as `namespace` and `key`) in a window of
   * `windowMs`: resolves with the hits so far (more than `max` means refused) and the ms until the
   * window ends. Never rejects: a DynamoDB failure is answered from the per-process fallback.
   */
  async hit(namespace: string, key: string, windowMs: number, max: number): Promise<RateLimitHit> {
    const pk = `rl#${this.settings.service}#${namespace}#${key}`;
    const now = this.now();
    try {
      return await this.hitShared(pk, now, windowMs, max);
    } catch (err) {
      if (now - this.lastFailureLog >= FAILURE_LOG_INTERVAL_MS) {
        this.lastFailureLog = now;
        this.settings.log.error({ err, table: this.settings.table }, 'the shared rate limits are unavailable: counting in this process only');
      }
      return this.hitLocal(pk, now, windowMs);
    }
  }

  private async hitShared(pk: string, now: number, windowMs: number, max: number): Promise<RateLimitHit> {
    const { db, table } = this.settings;
    const windowEnds = now + windowMs;
    for (let round = 0; round < 3; round += 1) {
      try {
        const res = await db.send(
          new UpdateCommand({
            TableName: table,
            Key: { pk },
            UpdateExpression: 'SET hits = if_not_exists(hits, :zero) + :one, windowEnds = if_not_exists(windowEnds, :ends), expiresAt = if_not_exists(expiresAt, :expires)',
            ConditionExpression: 'attribute_not_exists(windowEnds) OR (windowEnds > :now AND hits < :max)',
            ExpressionAttributeValues: { ':zero': 0, ':one': 1, ':ends': windowEnds, ':expires': Math.ceil(windowEnds / 1000) + 60, ':now': now, ':max': max },
            ReturnValues: 'ALL_NEW',
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          }),
        );
        // Clocks of instances differ a little: never more than a window.
        const ttl = Math.min(windowMs, Math.max(0, numberOf(res.Attributes, 'windowEnds') - now));
        return { current: numberOf(res.Attributes, 'hits'), ttl };
      } catch (err) {
        if (!isConditionFailed(err)) throw err;
        const oldEnds = numberOf((err as { Item?: Record<string, unknown> }).Item, 'windowEnds');
        // The window is open, so the key is at its limit: refused, not counted.
        if (oldEnds > now) return { current: max + 1, ttl: Math.min(windowMs, oldEnds - now) };
        // The window has ended: start the next one with this request, unless another instance just did.
        try {
          await db.send(
            new PutCommand({
              TableName: table,
              Item: { pk, hits: 1, windowEnds, expiresAt: Math.ceil(windowEnds / 1000) + 60 },
              ConditionExpression: 'windowEnds = :old',
              ExpressionAttributeValues: { ':old': oldEnds },
            }),
          );
          return { current: 1, ttl: windowMs };
        } catch (putErr) {
          if (!isConditionFailed(putErr)) throw putErr;
        }
      }
    }
    // Three rounds lost to other instances starting windows: a flood on this key.
    return { current: max + 1, ttl: 1000 };
  }

  private hitLocal(pk: string, now: number, windowMs: number): RateLimitHit {
    let entry = this.fallback.get(pk);
    if (!entry || entry.windowEnds <= now) {
      if (this.fallback.size >= FALLBACK_MAX_KEYS) this.fallback.clear();
      entry = { hits: 0, windowEnds: now + windowMs };
      this.fallback.set(pk, entry);
    }
    entry.hits += 1;
    return { current: entry.hits, ttl: entry.windowEnds - now };
  }
}
