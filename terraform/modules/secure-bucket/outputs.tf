output "id" {
  description = "Name of the bucket, available once its policy and public access block are in place."
  value       = aws_s3_bucket.this.id

  depends_on = [
    aws_s3_bucket_policy.this,
    aws_s3_bucket_public_access_block.this,
  ]
}

output "arn" {
  description = "ARN of the bucket."
  value       = aws_s3_bucket.this.arn
}

output "policy" {
  description = "The bucket policy as applied (JSON)."
  value       = aws_s3_bucket_policy.this.policy
}

output "public_access_block" {
  description = "The bucket's Block Public Access settings as applied: block_public_acls, block_public_policy, ignore_public_acls, restrict_public_buckets."
  value = {
    block_public_acls       = aws_s3_bucket_public_access_block.this.block_public_acls
    block_public_policy     = aws_s3_bucket_public_access_block.this.block_public_policy
    ignore_public_acls      = aws_s3_bucket_public_access_block.this.ignore_public_acls
    restrict_public_buckets = aws_s3_bucket_public_access_block.this.restrict_public_buckets
  }
}

output "object_ownership" {
  description = "Object ownership setting as applied (BucketOwnerEnforced: ACLs disabled)."
  value       = one(aws_s3_bucket_ownership_controls.this.rule).object_ownership
}

output "encryption" {
  description = "Default encryption as applied: sse_algorithm, kms_master_key_id (null for AES256) and bucket_key_enabled."
  value = {
    sse_algorithm      = one(one(aws_s3_bucket_server_side_encryption_configuration.this.rule).apply_server_side_encryption_by_default).sse_algorithm
    kms_master_key_id  = one(one(aws_s3_bucket_server_side_encryption_configuration.this.rule).apply_server_side_encryption_by_default).kms_master_key_id
    bucket_key_enabled = one(aws_s3_bucket_server_side_encryption_configuration.this.rule).bucket_key_enabled
  }
}

output "versioning_status" {
  description = "Versioning status as applied (Enabled)."
  value       = one(aws_s3_bucket_versioning.this.versioning_configuration).status
}

output "access_log_target_bucket" {
  description = "Bucket that receives this bucket's server access logs, or null."
  value       = try(aws_s3_bucket_logging.this[0].target_bucket, null)
}

output "lifecycle" {
  description = "Lifecycle as applied, from the enabled rules: abort_incomplete_multipart_upload_days and noncurrent_version_expiration_days (lists of days)."
  value = {
    abort_incomplete_multipart_upload_days = flatten([
      for rule in aws_s3_bucket_lifecycle_configuration.this.rule : [for abort in rule.abort_incomplete_multipart_upload : abort.days_after_initiation] if rule.status == "Enabled"
    ])
    noncurrent_version_expiration_days = flatten([
      for rule in aws_s3_bucket_lifecycle_configuration.this.rule : [for expiration in rule.noncurrent_version_expiration : expiration.noncurrent_days] if rule.status == "Enabled"
    ])
  }
}

output "object_lock" {
  description = "Object Lock as applied: enabled, and the default retention (mode, days), or null."
  value = {
    enabled   = aws_s3_bucket.this.object_lock_enabled
    retention = try(one(one(aws_s3_bucket_object_lock_configuration.this[0].rule).default_retention), null)
  }
}

output "cors_rules" {
  description = "The bucket's CORS rules as applied (empty without CORS)."
  value       = try(aws_s3_bucket_cors_configuration.this[0].cors_rule, [])
}
