import { baseConfigProperties, portProperty, resourceNameProperties } from '@scs/common';
import { type Static, Type } from '@sinclair/typebox';

const { PRIMARY_BUCKET, SENSITIVE_BUCKET, FILES_TABLE } = resourceNameProperties;

/** The upload service's configuration; every key is the environment variable of the same name. */
export const UploadConfig = Type.Object({
  ...baseConfigProperties,
  PORT: portProperty(3002),
  PRIMARY_BUCKET,
  SENSITIVE_BUCKET,
  FILES_TABLE,
  MAX_UPLOAD_BYTES: Type.Integer({ default: 104_857_600, minimum: 1 }),
  QUOTA_BYTES: Type.Integer({ default: 1_073_741_824, minimum: 1 }),
});
export type UploadConfig = Static<typeof UploadConfig>;
