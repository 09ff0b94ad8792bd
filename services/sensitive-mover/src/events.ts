import { type Static, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/** One object-created notification, keys decoded: the object version the event is about. */
export interface CreatedObject {
  bucket: string;
  key: string;
  /** Absent when the bucket was not versioned when the object was written (or the emulator leaves it out). */
  versionId?: string | undefined;
  eTag?: string | undefined;
  size?: number | undefined;
  /** S3's per-key event order (hex); absent from some emulators. */
  sequencer?: string | undefined;
}

/** The event is not one this function handles: it will never succeed, whatever the retries. */
export class InvalidEvent extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidEvent';
  }
}

const S3Record = Type.Object({
  eventSource: Type.Literal('aws:s3'),
  eventName: Type.String(),
  s3: Type.Object({
    bucket: Type.Object({ name: Type.String({ minLength: 1 }) }),
    object: Type.Object({
      key: Type.String({ minLength: 1 }),
      size: Type.Optional(Type.Integer({ minimum: 0 })),
      eTag: Type.Optional(Type.String()),
      versionId: Type.Optional(Type.String()),
      sequencer: Type.Optional(Type.String()),
    }),
  }),
});
/** The S3 event notification Lambda receives (https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html). */
const S3Notification = Type.Object({ Records: Type.Array(S3Record, { maxItems: 100 }) });

/** The same event delivered through EventBridge (https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html). */
const EventBridgeObjectEvent = Type.Object({
  source: Type.Literal('aws.s3'),
  'detail-type': Type.String(),
  detail: Type.Object({
    bucket: Type.Object({ name: Type.String({ minLength: 1 }) }),
    object: Type.Object({
      key: Type.String({ minLength: 1 }),
      size: Type.Optional(Type.Integer({ minimum: 0 })),
      etag: Type.Optional(Type.String()),
      eTag: Type.Optional(Type.String()),
      'version-id': Type.Optional(Type.String()),
      sequencer: Type.Optional(Type.String()),
    }),
  }),
});

/** S3 sends this once when a notification is configured; it names no object. */
const TestEvent = Type.Object({ Event: Type.Literal('s3:TestEvent') });

/**
 * S3 notifications carry the key URL-encoded as in a form (R15): `+` is a space, `%2B` a plus.
 * (EventBridge events carry the key as it is.)
 */
export function decodeEventKey(encoded: string): string {
  try {
    return decodeURIComponent(encoded.replace(/\+/g, ' '));
  } catch {
    throw new InvalidEvent(`the event's object key is not validly URL-encoded: ${JSON.stringify(encoded.slice(0, 200))}`);
  }
}

const noNullVersion = (v: string | undefined) => (v && v !== 'null' ? v : undefined);

/**
 * The objects an event says were created, validated at the edge: an S3 notification (keys
 * URL-decoded) or its EventBridge form. S3's test event yields nothing; events other than object
 * creation yield nothing; anything else is an InvalidEvent.
 */
export function createdObjects(event: unknown): CreatedObject[] {
  if (Value.Check(TestEvent, event)) return [];
  if (Value.Check(S3Notification, event)) {
    return (event as Static<typeof S3Notification>).Records.filter((r) => r.eventName.startsWith('ObjectCreated:')).map((r) => ({
      bucket: r.s3.bucket.name,
      key: decodeEventKey(r.s3.object.key),
      versionId: noNullVersion(r.s3.object.versionId),
      eTag: r.s3.object.eTag,
      size: r.s3.object.size,
      sequencer: r.s3.object.sequencer,
    }));
  }
  if (Value.Check(EventBridgeObjectEvent, event)) {
    const e = event as Static<typeof EventBridgeObjectEvent>;
    if (e['detail-type'] !== 'Object Created') return [];
    const o = e.detail.object;
    return [
      {
        bucket: e.detail.bucket.name,
        key: o.key,
        versionId: noNullVersion(o['version-id']),
        eTag: o.etag ?? o.eTag,
        size: o.size,
        sequencer: o.sequencer,
      },
    ];
  }
  throw new InvalidEvent('not an S3 object-created event (expected Records[] of aws:s3 records, or an aws.s3 EventBridge event)');
}
