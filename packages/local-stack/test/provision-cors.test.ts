import { GetBucketCorsCommand, S3Client } from '@aws-sdk/client-s3';
import { loadConfig } from '@scs/common';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { primaryCorsRule, ResourceNames } from '../src/provision';

const { parse } = createRequire(__filename)('@cdktf/hcl2json') as { parse(filename: string, text: string): Promise<Record<string, unknown>> };

/** The primary bucket's CORS rule as terraform/storage.tf declares it (`local.primary_cors_rule`). */
async function terraformRule(): Promise<Record<string, unknown>> {
  const file = join(__dirname, '../../../terraform/storage.tf');
  const parsed = (await parse('storage.tf', readFileSync(file, 'utf8'))) as { locals: Record<string, unknown>[] };
  const rule = parsed.locals.map((l) => l.primary_cors_rule).find(Boolean);
  if (!rule) throw new Error('terraform/storage.tf declares no local.primary_cors_rule');
  return rule as Record<string, unknown>;
}

describe("the primary bucket's CORS rule (direct uploads from the browser)", () => {
  const names = loadConfig(ResourceNames, process.env);
  const endpoint = process.env.AWS_ENDPOINT_URL ?? '';

  it('the local emulator gets the rule Terraform gives the bucket on AWS, for the local site origins', async () => {
    const tf = await terraformRule();
    expect(primaryCorsRule(['https://files.example.test'])).toEqual({
      AllowedOrigins: ['https://files.example.test'],
      AllowedMethods: tf.allowed_methods,
      AllowedHeaders: tf.allowed_headers,
      ExposeHeaders: tf.expose_headers,
      MaxAgeSeconds: tf.max_age_seconds,
    });
    expect(tf.allowed_origins).toEqual(['${var.site_origin}']);
    const s3 = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true });
    try {
      const applied = await s3.send(new GetBucketCorsCommand({ Bucket: names.PRIMARY_BUCKET }));
      expect(applied.CORSRules).toEqual([expect.objectContaining({ AllowedOrigins: names.SITE_ORIGINS.split(','), AllowedMethods: ['GET', 'POST', 'PUT'], ExposeHeaders: ['ETag'] })]);
    } finally {
      s3.destroy();
    }
  });

  it("a browser's preflight for a direct upload is admitted from the site's origin and refused from any other", async () => {
    const preflight = (origin: string) =>
      fetch(`${endpoint}/${names.PRIMARY_BUCKET}`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST' } });
    const site = names.SITE_ORIGINS.split(',')[0]!;
    const admitted = await preflight(site);
    expect(admitted.status).toBe(200);
    expect(admitted.headers.get('access-control-allow-origin')).toBe(site);
    expect((await preflight('https://evil.example')).status).toBe(403);
  });

  it("a resumable upload's part PUT with its signed checksum header is admitted from the site's origin, its ETag readable", async () => {
    const site = names.SITE_ORIGINS.split(',')[0]!;
    const preflight = await fetch(`${endpoint}/${names.PRIMARY_BUCKET}/users/u/f`, {
      method: 'OPTIONS',
      headers: { origin: site, 'access-control-request-method': 'PUT', 'access-control-request-headers': 'content-type,x-amz-checksum-sha256' },
    });
    expect(preflight.status).toBe(200);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(site);
    expect(preflight.headers.get('access-control-allow-methods')).toMatch(/PUT/);
    expect(preflight.headers.get('access-control-allow-headers')?.toLowerCase()).toMatch(/x-amz-checksum-sha256/);
    expect(preflight.headers.get('access-control-expose-headers')).toMatch(/ETag/);
  });
});
