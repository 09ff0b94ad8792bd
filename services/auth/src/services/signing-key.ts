import type { SSMClient } from '@aws-sdk/client-ssm';
import { activeSigningKey, every, readSigningKeys, type SigningKey } from '@scs/common';
import type { Logger } from '@scs/common';

/**
 * The current private signing key, read from SSM (a KMS-encrypted SecureString) at start-up and
 * re-read periodically so that `npm run keys:rotate` reaches every instance without a restart.
 */
export class SigningKeySource {
  private keys: SigningKey[] = [];
  private stopRefresh: (() => void) | undefined;

  constructor(
    private readonly ssm: SSMClient,
    private readonly param: string,
    private readonly refreshMs: number,
    private readonly log?: Pick<Logger, 'warn'>,
    private readonly now: () => number = Date.now,
  ) {}

  async load(): Promise<void> {
    const keys = await readSigningKeys(this.ssm, this.param);
    if (keys.length === 0) {
      throw new Error(`No JWT signing key in SSM parameter ${this.param}: run the provisioning or "npm run keys:rotate"`);
    }
    this.keys = keys;
  }

  start(): void {
    this.stopRefresh = every(this.refreshMs, () => this.load(), this.log, 'reloading the JWT signing key failed; keeping the current one');
  }

  stop(): void {
    this.stopRefresh?.();
  }

  /** The key to sign with now: a freshly rotated key is used only once it has activated. */
  get key(): SigningKey {
    const key = activeSigningKey(this.keys, this.now());
    if (!key) throw new Error('signing key not loaded');
    return key;
  }
}
