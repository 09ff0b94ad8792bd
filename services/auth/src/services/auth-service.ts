import type { JWT } from '@fastify/jwt';
import { JWT_ALGORITHM, type Role } from '@scs/common';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { AuthConfig } from '../config';
import { InvalidCredentials, InvalidRefreshToken, InvalidUsername, TooManyAttempts, UsernameTaken } from '../errors';
import type { SessionRepository } from '../repositories/sessions';
import type { LoginThrottle, ThrottleRule } from '../repositories/throttle';
import type { User, UserRepository } from '../repositories/users';
import { assertAcceptablePassword, PASSWORD_MAX_CHARS, type PasswordHasher, passwordLength } from './passwords';
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
}

/** Case-folds a username; undefined when it cannot be a valid one. */
export function normaliseUsername(raw: string): string | undefined {
  const folded = raw.normalize('NFKC').toLowerCase();
  return USERNAME.test(folded) ? folded : undefined;
}

export const hashRefreshToken = (token: string) => createHash('sha256').update(token).digest('base64url');

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

  constructor(private readonly deps: AuthServiceDeps) {
    this.now = deps.now ?? (() => new Date());
    this.accountRule = {
      maxFailures: deps.config.LOGIN_MAX_FAILURES_PER_ACCOUNT,
      windowSeconds: deps.config.LOGIN_THROTTLE_WINDOW_SECONDS,
    };
    this.addressRule = {
      maxFailures: deps.config.LOGIN_MAX_FAILURES_PER_ADDRESS,
      windowSeconds: deps.config.LOGIN_THROTTLE_WINDOW_SECONDS,
    };
  }

  async register(rawUsername: string, password: string, role: Role = 'user'): Promise<PublicUser> {
    const username = normaliseUsername(rawUsername);
    if (!username) throw new InvalidUsername();
    assertAcceptablePassword(password, username);
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

  /** Creates the admin account, or makes the existing account an admin with this password. */
  async seedAdmin(rawUsername: string, password: string): Promise<{ user: PublicUser; created: boolean }> {
    const username = normaliseUsername(rawUsername);
    if (!username) throw new InvalidUsername();
    assertAcceptablePassword(password, username);
    const existing = await this.deps.users.get(username);
    if (!existing) {
      try {
        return { user: await this.register(username, password, 'admin'), created: true };
      } catch (err) {
        if (!(err instanceof UsernameTaken)) throw err;
      }
    }
    await this.deps.users.promote(username, await this.deps.hasher.hash(password), this.now().toISOString());
    const user = await this.deps.users.get(username);
    if (!user) throw new Error(`admin ${username} vanished while being seeded`);
    return { user: toPublic(user), created: false };
  }

  /**
   * Verifies a login. Throttled keys (account or client address) are refused before any hash is
   * computed, even with the right password; unknown users cost the same hash as wrong passwords.
   */
  async login(rawUsername: string, password: string, clientIp: string, outcome: Outcome): Promise<IssuedSession> {
    const username = normaliseUsername(rawUsername);
    const nowSeconds = Math.floor(this.now().getTime() / 1000);
    const accountKey = `acct#${username ?? rawUsername.slice(0, 64).toLowerCase()}`;
    const addressKey = `addr#${clientIp}`;
    const wait = Math.max(
      await this.deps.throttle.retryAfter(accountKey, this.accountRule, nowSeconds),
      await this.deps.throttle.retryAfter(addressKey, this.addressRule, nowSeconds),
    );
    if (wait > 0) {
      outcome.reason = 'throttled';
      throw Object.assign(new TooManyAttempts(), { retryAfterSeconds: wait });
    }

    const user = username ? await this.deps.users.get(username) : undefined;
    const tooLong = passwordLength(password) > PASSWORD_MAX_CHARS;
    const ok = tooLong ? false : await this.deps.hasher.verify(user?.passwordHash, password);
    if (!ok || !user) {
      outcome.reason = user ? 'wrong_password' : 'unknown_user';
      if (user) outcome.userId = user.id;
      await Promise.all([
        this.deps.throttle.recordFailure(accountKey, this.accountRule, nowSeconds),
        this.deps.throttle.recordFailure(addressKey, this.addressRule, nowSeconds),
      ]);
      throw new InvalidCredentials();
    }
    outcome.userId = user.id;
    await this.deps.throttle.reset(accountKey);
    if (this.deps.hasher.needsRehash(user.passwordHash)) {
      await this.deps.users.updatePasswordHash(user.username, await this.deps.hasher.hash(password), this.now().toISOString());
    }
    return this.startSession(user);
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
      familyExpiresAt,
      this.now().toISOString(),
    );
    return this.issue(user, refreshToken, expiresAt);
  }

  /**
   * Rotates a refresh token. A token that was already rotated (or loses a concurrent rotation) is
   * reuse: the whole family is revoked, which ends the session for the thief and the owner alike.
   */
  async refresh(refreshToken: string | undefined, outcome: Outcome): Promise<IssuedSession> {
    if (!refreshToken || refreshToken.length > 128) {
      outcome.reason = 'missing';
      throw new InvalidRefreshToken();
    }
    const nowSeconds = Math.floor(this.now().getTime() / 1000);
    const oldHash = hashRefreshToken(refreshToken);
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
    if (record.status !== 'active') {
      outcome.reason = 'reuse';
      await this.deps.sessions.revokeFamily(record.familyId);
      throw new InvalidRefreshToken();
    }
    const user = await this.deps.users.get(record.username);
    if (!user || user.id !== record.userId) {
      outcome.reason = 'user_gone';
      await this.deps.sessions.revokeFamily(record.familyId);
      throw new InvalidRefreshToken();
    }
    const next = randomBytes(32).toString('base64url');
    const expiresAt = Math.min(nowSeconds + this.deps.config.REFRESH_TOKEN_TTL_SECONDS, family.expiresAt);
    const rotated = await this.deps.sessions.rotate(
      oldHash,
      { tokenHash: hashRefreshToken(next), familyId: record.familyId, userId: user.id, username: user.username, expiresAt },
      this.now().toISOString(),
    );
    if (!rotated) {
      outcome.reason = 'reuse';
      await this.deps.sessions.revokeFamily(record.familyId);
      throw new InvalidRefreshToken();
    }
    return this.issue(user, next, expiresAt);
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
