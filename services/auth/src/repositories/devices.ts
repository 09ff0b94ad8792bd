import { GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/**
 * A device an account has signed in from (OWASP "Slow down online guessing attacks with device
 * cookies"): the browser holds a random token in the `scs_device` cookie, the table only its
 * SHA-256, bound to the account it was issued to.
 */
export interface DeviceRecord {
  pk: string;
  userId: string;
  username: string;
  createdAt: string;
  /** Epoch seconds; also the DynamoDB TTL attribute. */
  expiresAt: number;
}

const deviceKey = (tokenHash: string) => `dev#${tokenHash}`;

/** Device tokens in the sessions table (`dev#{sha256}` items beside the refresh-token families). */
export class DeviceRepository {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  /** The device a token hash names, or undefined when there is none. */
  async get(tokenHash: string): Promise<DeviceRecord | undefined> {
    const out = await this.db.send(new GetCommand({ TableName: this.table, Key: { pk: deviceKey(tokenHash) } }));
    return out.Item as DeviceRecord | undefined;
  }

  /** Records a new device token (its hash) for an account, until `expiresAt` (epoch seconds). */
  async put(tokenHash: string, device: { userId: string; username: string; expiresAt: number }, now: string): Promise<void> {
    const item: DeviceRecord = { pk: deviceKey(tokenHash), ...device, createdAt: now };
    await this.db.send(new PutCommand({ TableName: this.table, Item: item }));
  }
}
