import { DeleteObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { paginateObjectVersions } from '@scs/common';

/** Deletes every version and delete marker under `prefix` (the bucket is versioned); returns how many. */
export async function purgeVersions(s3: S3Client, bucket: string, prefix: string): Promise<number> {
  let removed = 0;
  for await (const page of paginateObjectVersions(s3, { Bucket: bucket, Prefix: prefix })) {
    for (const e of [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])]) {
      if (!e.Key) continue;
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: e.Key, VersionId: e.VersionId }));
      removed += 1;
    }
  }
  return removed;
}
