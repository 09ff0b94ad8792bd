import type { JWT } from '@fastify/jwt';
import { JWT_ALGORITHM, RateLimited, type Role, StorageUnavailable } from '@scs/common';
import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { AuthConfig } from '../config';
import { InvalidCredentials, InvalidRefreshToken, InvalidUsername, SignInsInProgress, TooManyAttempts, UsernameTaken } from '../errors';
import type { DeviceRepository } from '../repositories/devices';
import type { FamilyRecord, RefreshTokenRecord, SessionRepository } from '../repositories/sessions';
import type { LoginThrottle, ThrottleRule } from '../repositories/throttle';
import type { User, UserRepository } from '../repositories/users';
import { assertAcceptablePassword, PASSWORD_MAX_CHARS, type PasswordHasher, passwordLength } from './passwords';
import { HashGate } from './hash-gate';
import type { SigningKeySource } from './signing-key';

const USERNAME = /^[a-z0-9][a-z0-9._-]{2,31}$/;

export interface PublicUser {
  id: string;
  username: string;
  role: Role;
}

export interface IssuedSession {
  accessToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
  user: PublicUser;
  refreshToken: string;
  refreshMaxAgeSeconds: number;
  /** A new device token for the `scs_device` cookie, when this sign-in came from a device not yet known. */
  device?: { token: string; maxAgeSeconds: number };
}

/** Seconds a client is told to wait when its sign-ins are already being checked (HashGate). */
const IN_PROGRESS_RETRY_AFTER_SECONDS = 1;

/** Case-folds a username; undefined when it cannot be a valid one. */
export function normaliseUsername(raw: string): string | undefined {
  const folded = raw.normalize('NFKC').toLowerCase();
  return USERNAME.test(folded) ? folded : undefined;
}

/** Words that make a username look like an administrator's; registration refuses them. */
const ADMIN_LIKE_WORDS: ReadonlySet<string> = new Set([
  'admin',
  'admins',
  'administrator',
  'administrators',
  'superadmin',
  'superuser',
  'sysadmin',
  'sysop',
  'root',
  'webmaster',
  'hostmaster',
  'postmaster',
]);

/**
 * True when a (normalised) username looks like an administrator's: one of its parts, split at
 * anything but letters (`.`, `_`, `-`, digits), is e.g. `admin`, `root` or `sysadmin`
 * (`admin`, `site-admin`, `root2`, `e2e.admin`; not `badminton`).
 */
export function isAdminLikeUsername(username: string): boolean {
  return username.split(/[^a-z]+/).some((part) => ADMIN_LIKE_WORDS.has(part));
}

export const hashRefreshToken = (token: string) => createHash('sha256').update(token).digest('base64url');

/** Device tokens are random like refresh tokens and stored the same way: only their SHA-256. */
export const hashDeviceToken = hashRefreshToken;

/**
 * The refresh token that rotation gives `token`: an HMAC of a random seed keyed by the token
 * itself. Only the seed and the successor's hash are stored, so the same successor can be handed
 * again to a parallel refresh that presents `token`, and nobody can derive it without `token`.
 */
export const successorToken = (token: string, seed: string) => createHmac('sha256', token).update(seed).digest('base64url');

/** How many times a refresh re-reads and retries after losing a rotation to a parallel request. */
const ROTATION_ROUNDS = 3;

/** What seeding the admin did. */
export type SeedOutcome = 'created' | 'unchanged' | 'password_changed' | 'promoted';

/** Seeding the admin over an existing non-admin account without SCS_ADMIN_PROMOTE_EXISTING=true. */
export class AdminSeedRefused extends Error {
  constructor(username: string) {
    super(
      `SCS_ADMIN_USERNAME "${username}" is an existing account that is not an admin; it is not promoted, so none of ` +
        'its sessions can gain the admin role. Choose another admin name, or set SCS_ADMIN_PROMOTE_EXISTING=true to ' +
        'make that account the admin (all its sessions end).',
    );
    this.name = 'AdminSeedRefused';
  }
}

const toPublic = (u: User): PublicUser => ({ id: u.id, username: u.username, role: u.role });

/** What happened, for the audit log and metrics, without secrets. */
export interface Outcome {
  userId?: string;
  reason?: string;
}

export interface AuthServiceDeps {
  users: UserRepository;
  sessions: SessionRepository;
  throttle: LoginThrottle;
  devices: DeviceRepository;
  hasher: PasswordHasher;
  signingKey: SigningKeySource;
  jwt: JWT;
  config: AuthConfig;
  now?: () => Date;
}

/** Accounts, logins and sessions: the logic behind the auth routes. */
export class AuthService {
  private readonly now: () => Date;
  private readonly accountRule: ThrottleRule;
  private readonly addressRule: ThrottleRule;
  private readonly deviceRule: ThrottleRule;
  private readonly adminUsername: string | undefined;
  /** Hashes in flight per account and per address (this process). */
  readonly hashGate: HashGate;

  constructor(private readonly deps: AuthServiceDeps) {
    this.now = deps.now ?? (() => new Date());
    this.adminUsername = deps.config.SCS_ADMIN_USERNAME ? normaliseUsername(deps.config.SCS_ADMIN_USERNAME) : undefined;
    this.accountRule = {
      maxFailures: deps.config.LOGIN_MAX_FAILURES_PER_ACCOUNT,
      windowSeconds: deps.config.LOGIN_THROTTLE_WINDOW_SECONDS,
    };
    this.addressRule = {
      maxFailures: deps.config.LOGIN_MAX_FAILURES_PER_ADDRESS,
      windowSeconds: deps.config.LOGIN_THROTTLE_WINDOW_SECONDS,
    };
    this.deviceRule = {
      maxFailures: deps.config.LOGIN_MAX_FAILURES_PER_DEVICE,
      windowSeconds: deps.config.LOGIN_THROTTLE_WINDOW_SECONDS,
    };
    this.hashGate = new HashGate({ perAccount: deps.config.HASH_CONCURRENCY_PER_ACCOUNT, perAddress: deps.config.HASH_CONCURRENCY_PER_ADDRESS });
  }

  /**
   * Creates a user account. Admin-like names (`isAdminLikeUsername`) and the configured admin's
   * name are refused as taken (409): only seeding creates admins. The hash counts against the
   * client address's hashes in flight (HashGate): one more is 429 RATE_LIMITED before it is queued.
   */
  async register(rawUsername: string, password: string, clientIp: string): Promise<PublicUser> {
    const username = normaliseUsername(rawUsername);
    if (!username) throw new InvalidUsername();
    if (isAdminLikeUsername(username) || username === this.adminUsername) throw new UsernameTaken();
    assertAcceptablePassword(password, username);
    const leave = this.hashGate.enter(clientIp);
    if (!leave) throw Object.assign(new RateLimited(), { retryAfterSeconds: IN_PROGRESS_RETRY_AFTER_SECONDS });
    try {
      return await this.createAccount(username, password, 'user');
    } finally {
      leave();
    }
  }

  private async createAccount(username: string, password: string, role: Role): Promise<PublicUser> {
    const now = this.now().toISOString();
    const user: User = {
      id: randomUUID(),
      username,
      role,
      passwordHash: await this.deps.hasher.hash(password),
      createdAt: now,
      updatedAt: now,
    };
    if (!(await this.deps.users.create(user))) throw new UsernameTaken();
    return toPublic(user);
  }

  /**
   * Seeds the admin account (SCS_ADMIN_USERNAME / SCS_ADMIN_PASSWORD at start-up). No account of
   * that name: it is created as admin. An admin already: kept as is when the password matches;
   * otherwise the new password replaces the old one and every session of the admin ends. Any other
   * account (a name someone registered): refused with AdminSeedRefused, unless
   * SCS_ADMIN_PROMOTE_EXISTING=true, which makes it the admin with this password and ends all its
   * sessions. Either way no session started under another role or password goes on as the admin.
   */
  async seedAdmin(rawUsername: string, password: string): Promise<{ user: PublicUser; outcome: SeedOutcome }> {
    const username = normaliseUsername(rawUsername);
    if (!username) throw new InvalidUsername();
    assertAcceptablePassword(password, username);
    const { users, hasher } = this.deps;
    for (let round = 0; round < 3; round += 1) {
      const existing = await users.get(username);
      if (!existing) {
        try {
          return { user: await this.createAccount(username, password, 'admin'), outcome: 'created' };
        } catch (err) {
          if (err instanceof UsernameTaken) continue;
          throw err;
        }
      }
      const now = this.now().toISOString();
      if (existing.role === 'admin') {
        const same = await hasher.verify(existing.passwordHash, password);
        if (same && !hasher.needsRehash(existing.passwordHash)) return { user: toPublic(existing), outcome: 'unchanged' };
        if (await users.setAdmin(username, 'admin', await hasher.hash(password), now, !same)) {
          return { user: toPublic(existing), outcome: same ? 'unchanged' : 'password_changed' };
        }
        continue;
      }
      if (!this.deps.config.SCS_ADMIN_PROMOTE_EXISTING) throw new AdminSeedRefused(username);
      if (await users.setAdmin(username, existing.role, await hasher.hash(password), now, true)) {
        return { user: { ...toPublic(existing), role: 'admin' }, outcome: 'promoted' };
      }
    }
    throw new Error(`The account ${username} kept changing while the admin was being seeded`);
  }

  /**
   * Verifies a login. The attempt is counted against the client address and against the account
   * before any hash is computed (AU-05), atomically, so throttled keys are refused even with the
   * right password and parallel attempts cannot exceed the limit; unknown users cost the same hash
   * as wrong passwords (AU-04).
   *
   * A device the account has signed in from before (`deviceToken`, the `scs_device` cookie, OWASP's
   * device cookies) is counted on its own instead of with the account: someone guessing from
   * elsewhere locks the account for untrusted devices only, and its owner still signs in from a
   * known device; that device is locked after LOGIN_MAX_FAILURES_PER_DEVICE failures. A successful
   * sign-in from an unknown device gets a new device token (`device` in the result).
   *
   * Then the hash must find a place in this process's HashGate (hashes in flight per account and
   * per address): if not, 429 TOO_MANY_ATTEMPTS with Retry-After at once, and the attempt is given
   * back. Failures: 401 INVALID_CREDENTIALS, 429 TOO_MANY_ATTEMPTS, 503 (DynamoDB, hash queue full).
   */
  async login(
    rawUsername: string,
    password: string,
    clientIp: string,
    outcome: Outcome,
    deviceToken?: string,
  ): Promise<IssuedSession> {
    const username = normaliseUsername(rawUsername);
    const nowSeconds = Math.floor(this.now().getTime() / 1000);
    const accountName = username ?? rawUsername.slice(0, 64).toLowerCase();
    const addressKey = `addr#${clientIp}`;
    const device = await this.knownDevice(deviceToken, username, nowSeconds);
    // A known device is counted on its own; any other attempt with the account.
    const ownerKey = device ? `dev#${device.tokenHash}` : `acct#${accountName}`;
    await this.countAttempt(ownerKey, device ? this.deviceRule : this.accountRule, addressKey, nowSeconds, outcome);

    const leave = this.hashGate.enter(clientIp, accountName);
    if (!leave) {
      await this.releaseAttempt([ownerKey, addressKey], nowSeconds);
      outcome.reason = 'in_progress';
      throw Object.assign(new SignInsInProgress(), { retryAfterSeconds: IN_PROGRESS_RETRY_AFTER_SECONDS });
    }
    try {
      let user: User | undefined;
      let ok: boolean;
      try {
        user = username ? await this.deps.users.get(username) : undefined;
        const tooLong = passwordLength(password) > PASSWORD_MAX_CHARS;
        ok = tooLong ? false : await this.deps.hasher.verify(user?.passwordHash, password);
      } catch (err) {
        // Not evaluated (an outage, a full hash queue): the attempt does not count.
        await this.releaseAttempt([ownerKey, addressKey], nowSeconds);
        throw err;
      }
      if (!ok || !user) {
        outcome.reason = user ? 'wrong_password' : 'unknown_user';
        if (user) outcome.userId = user.id;
        throw new InvalidCredentials();
      }
      outcome.userId = user.id;
      if (device) outcome.reason = 'known_device';
      await Promise.all([this.deps.throttle.reset(ownerKey), this.deps.throttle.release(addressKey, nowSeconds)]);
      if (this.deps.hasher.needsRehash(user.passwordHash)) {
        await this.deps.users.updatePasswordHash(user.username, await this.deps.hasher.hash(password), this.now().toISOString());
      }
      const session = await this.startSession(user);
      return device?.userId === user.id ? session : { ...session, device: await this.newDevice(user, nowSeconds) };
    } finally {
      leave();
    }
  }

  /** The device a token names, when it was issued to this (normalised) username and has not expired. */
  private async knownDevice(
    token: string | undefined,
    username: string | undefined,
    nowSeconds: number,
  ): Promise<{ tokenHash: string; userId: string } | undefined> {
    if (!token || !username || token.length > 128) return undefined;
    const tokenHash = hashDeviceToken(token);
    const record = await this.deps.devices.get(tokenHash);
    if (!record || record.username !== username || record.expiresAt <= nowSeconds) return undefined;
    return { tokenHash, userId: record.userId };
  }

  private async newDevice(user: User, nowSeconds: number): Promise<{ token: string; maxAgeSeconds: number }> {
    const token = randomBytes(32).toString('base64url');
    const maxAgeSeconds = this.deps.config.DEVICE_COOKIE_MAX_AGE_SECONDS;
    await this.deps.devices.put(
      hashDeviceToken(token),
      { userId: user.id, username: user.username, expiresAt: nowSeconds + maxAgeSeconds },
      this.now().toISOString(),
    );
    return { token, maxAgeSeconds };
  }

  /**
   * Counts one attempt on the address, then on the account (or the known device); throws
   * TOO_MANY_ATTEMPTS when either is at its limit.
   */
  private async countAttempt(ownerKey: string, ownerRule: ThrottleRule, addressKey: string, nowSeconds: number, outcome: Outcome): Promise<void> {
    const { throttle } = this.deps;
    let wait = await throttle.acquire(addressKey, this.addressRule, nowSeconds);
    if (wait === 0) {
      try {
        wait = await throttle.acquire(ownerKey, ownerRule, nowSeconds);
      } catch (err) {
        await this.releaseAttempt([addressKey], nowSeconds);
        throw err;
      }
      // Refused by the account's limit: not a failure of this address.
      if (wait > 0) await throttle.release(addressKey, nowSeconds);
    }
    if (wait > 0) {
      outcome.reason = 'throttled';
      throw Object.assign(new TooManyAttempts(), { retryAfterSeconds: wait });
    }
  }

  private async releaseAttempt(keys: string[], nowSeconds: number): Promise<void> {
    await Promise.all(keys.map((key) => this.deps.throttle.release(key, nowSeconds))).catch(() => undefined);
  }

  private async startSession(user: User): Promise<IssuedSession> {
    const { config } = this.deps;
    const nowMs = this.now().getTime();
    const familyExpiresAt = Math.floor(nowMs / 1000) + config.SESSION_MAX_SECONDS;
    const refreshToken = randomBytes(32).toString('base64url');
    const expiresAt = Math.min(Math.floor(nowMs / 1000) + config.REFRESH_TOKEN_TTL_SECONDS, familyExpiresAt);
    await this.deps.sessions.startFamily(
      randomUUID(),
      { tokenHash: hashRefreshToken(refreshToken), userId: user.id, username: user.username, expiresAt },
      { expiresAt: familyExpiresAt, role: user.role, sessionVersion: user.sessionVersion ?? 0 },
      this.now().toISOString(),
    );
    return this.issue(user, refreshToken, expiresAt);
  }

  /**
   * Rotates a refresh token (JW-06). A token rotated less than REFRESH_REUSE_GRACE_SECONDS ago
   * whose successor is still the session's current token belongs to a parallel refresh of the same
   * session (two tabs, several requests): it gets that same successor, so every caller ends up
   * with the same cookie. Any other use of a rotated token (after the grace window, or once the
   * successor was rotated in turn) is reuse: the whole family is revoked, which ends the session
   * for the thief and the owner alike. A transient DynamoDB failure is a 503 that changes nothing.
   */
  async refresh(refreshToken: string | undefined, outcome: Outcome): Promise<IssuedSession> {
    if (!refreshToken || refreshToken.length > 128) {
      outcome.reason = 'missing';
      throw new InvalidRefreshToken();
    }
    const oldHash = hashRefreshToken(refreshToken);
    for (let round = 0; round < ROTATION_ROUNDS; round += 1) {
      const nowMs = this.now().getTime();
      const nowSeconds = Math.floor(nowMs / 1000);
      const record = await this.deps.sessions.getToken(oldHash);
      if (!record) {
        outcome.reason = 'unknown';
        throw new InvalidRefreshToken();
      }
      outcome.userId = record.userId;
      if (record.expiresAt <= nowSeconds) {
        outcome.reason = 'expired';
        throw new InvalidRefreshToken();
      }
      const family = await this.deps.sessions.getFamily(record.familyId);
      if (!family || family.revoked || family.expiresAt <= nowSeconds) {
        outcome.reason = 'revoked';
        throw new InvalidRefreshToken();
      }
      if (record.status === 'rotated') return this.replayRotation(refreshToken, record, family, nowMs, outcome);
      if (record.status !== 'active') return this.reuse(record, outcome);
      const user = await this.sessionUser(record, family, outcome);
      const seed = randomBytes(32).toString('base64url');
      const next = successorToken(refreshToken, seed);
      const expiresAt = Math.min(nowSeconds + this.deps.config.REFRESH_TOKEN_TTL_SECONDS, family.expiresAt);
      const result = await this.deps.sessions.rotate(
        oldHash,
        record.familyId,
        { tokenHash: hashRefreshToken(next), userId: user.id, username: user.username, expiresAt, seed },
        nowMs,
      );
      if (result === 'rotated') return this.issue(user, next, expiresAt);
      if (result === 'family_revoked') {
        outcome.reason = 'revoked';
        throw new InvalidRefreshToken();
      }
      // 'superseded' or 'conflict': a parallel request got there first; read the token again.
    }
    throw new StorageUnavailable();
  }

  /** A rotated token presented again: the same successor within the grace window, else reuse. */
  private async replayRotation(
    token: string,
    record: RefreshTokenRecord,
    family: FamilyRecord,
    nowMs: number,
    outcome: Outcome,
  ): Promise<IssuedSession> {
    const { rotatedAt, successorHash, successorSeed } = record;
    const graceMs = this.deps.config.REFRESH_REUSE_GRACE_SECONDS * 1000;
    if (rotatedAt === undefined || !successorHash || !successorSeed || nowMs - rotatedAt >= graceMs) return this.reuse(record, outcome);
    const successor = await this.deps.sessions.getToken(successorHash);
    const next = successorToken(token, successorSeed);
    if (!successor || successor.status !== 'active' || successor.expiresAt * 1000 <= nowMs || hashRefreshToken(next) !== successorHash) {
      return this.reuse(record, outcome);
    }
    const user = await this.sessionUser(record, family, outcome);
    outcome.reason = 'parallel_refresh';
    return this.issue(user, next, successor.expiresAt);
  }

  private async reuse(record: RefreshTokenRecord, outcome: Outcome): Promise<never> {
    outcome.reason = 'reuse';
    await this.deps.sessions.revokeFamily(record.familyId);
    throw new InvalidRefreshToken();
  }

  /**
   * The account a session belongs to, as long as it is the same account with the same role and
   * session version as at sign-in; otherwise the session is revoked (a promoted, demoted, deleted
   * or re-created account starts over with a new sign-in).
   */
  private async sessionUser(record: RefreshTokenRecord, family: FamilyRecord, outcome: Outcome): Promise<User> {
    const user = await this.deps.users.get(record.username);
    const reason =
      !user || user.id !== record.userId
        ? 'user_gone'
        : (family.role ?? 'user') !== user.role || (family.sessionVersion ?? 0) !== (user.sessionVersion ?? 0)
          ? 'account_changed'
          : undefined;
    if (!user || reason) {
      outcome.reason = reason;
      await this.deps.sessions.revokeFamily(record.familyId);
      throw new InvalidRefreshToken();
    }
    return user;
  }

  /** Ends the session the refresh token belongs to; unknown tokens are ignored. */
  async logout(refreshToken: string | undefined, outcome: Outcome): Promise<void> {
    if (!refreshToken || refreshToken.length > 128) return;
    const tokenHash = hashRefreshToken(refreshToken);
    const record = await this.deps.sessions.getToken(tokenHash);
    if (!record) return;
    outcome.userId = record.userId;
    await this.deps.sessions.revokeFamily(record.familyId);
    await this.deps.sessions.revokeToken(tokenHash);
  }

  /** The account behind a verified access token, or undefined when it no longer exists. */
  async me(sub: string, username: string): Promise<(PublicUser & { createdAt: string }) | undefined> {
    const user = await this.deps.users.get(username);
    if (!user || user.id !== sub) return undefined;
    return { ...toPublic(user), createdAt: user.createdAt };
  }

  private issue(user: User, refreshToken: string, refreshExpiresAt: number): IssuedSession {
    const { config } = this.deps;
    const key = this.deps.signingKey.key;
    const accessToken = this.deps.jwt.sign(
      { sub: user.id, username: user.username, role: user.role, token_use: 'access' },
      {
        key: key.privateKeyPem,
        algorithm: JWT_ALGORITHM,
        kid: key.kid,
        iss: config.JWT_ISSUER,
        aud: config.JWT_AUDIENCE,
        expiresIn: config.ACCESS_TOKEN_TTL_SECONDS,
      },
    );
    return {
      accessToken,
      tokenType: 'Bearer',
      expiresIn: config.ACCESS_TOKEN_TTL_SECONDS,
      user: toPublic(user),
      refreshToken,
      refreshMaxAgeSeconds: Math.max(0, refreshExpiresAt - Math.floor(this.now().getTime() / 1000)),
    };
  }
}
