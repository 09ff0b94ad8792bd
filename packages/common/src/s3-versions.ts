import { ListObjectVersionsCommand, type ListObjectVersionsCommandInput, type ListObjectVersionsCommandOutput, type S3Client } from '@aws-sdk/client-s3';

/**
 * Every page of a version listing: the paginator the SDK does not have for ListObjectVersions
 * (it takes two markers). Use like the SDK's `paginate*` functions, with `for await`.
 */
export async function* paginateObjectVersions(s3: S3Client, input: ListObjectVersionsCommandInput): AsyncGenerator<ListObjectVersionsCommandOutput> {
  let markers: Pick<ListObjectVersionsCommandInput, 'KeyMarker' | 'VersionIdMarker'> = {};
  for (;;) {
    const page = await s3.send(new ListObjectVersionsCommand({ ...input, ...markers }));
    yield page;
    if (!page.IsTruncated) return;
    markers = { KeyMarker: page.NextKeyMarker, VersionIdMarker: page.NextVersionIdMarker };
  }
}
