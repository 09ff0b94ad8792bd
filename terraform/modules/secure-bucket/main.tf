# One S3 bucket with the project's baseline: ACLs disabled, public access blocked,
# default encryption, versioning, lifecycle hygiene, TLS-only bucket policy and
# optional server access logging (security checklist IN-01..IN-06).

locals {
  kms_enabled = var.sse_algorithm == "aws:kms"
}

resource "aws_s3_bucket" "this" {
  bucket              = var.bucket
  force_destroy       = var.force_destroy
  object_lock_enabled = var.object_lock_retention_days != null

  tags = var.tags
}

resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket = aws_s3_bucket.this.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.sse_algorithm
      kms_master_key_id = local.kms_enabled ? var.kms_key_arn : null
    }
    bucket_key_enabled = local.kms_enabled
  }
}

resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id

  versioning_configuration {
    status = "Enabled"
  }
}

# Object Lock in governance mode: every new version is retained object_lock_retention_days;
# until then no delete of that version succeeds unless the caller holds
# s3:BypassGovernanceRetention (no role of this project does) and asks for the bypass.
# The lifecycle rules remove versions once their retention is over.
resource "aws_s3_bucket_object_lock_configuration" "this" {
  count = var.object_lock_retention_days == null ? 0 : 1

  bucket = aws_s3_bucket.this.id

  rule {
    default_retention {
      mode = "GOVERNANCE"
      days = var.object_lock_retention_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

# Browser requests straight to the bucket (presigned POST uploads, downloads) from the
# listed origins only.
resource "aws_s3_bucket_cors_configuration" "this" {
  count = var.cors_rule == null ? 0 : 1

  bucket = aws_s3_bucket.this.id

  cors_rule {
    allowed_origins = var.cors_rule.allowed_origins
    allowed_methods = var.cors_rule.allowed_methods
    allowed_headers = var.cors_rule.allowed_headers
    expose_headers  = var.cors_rule.expose_headers
    max_age_seconds = var.cors_rule.max_age_seconds
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_incomplete_multipart_upload_days
    }
  }

  rule {
    id     = "expire-noncurrent-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    # Once its noncurrent versions are gone, a lone delete marker is removed too.
    # (AWS does not allow this flag in the same rule as an expiration in days.)
    dynamic "expiration" {
      for_each = var.current_version_expiration_days == null ? [true] : []

      content {
        expired_object_delete_marker = true
      }
    }
  }

  dynamic "rule" {
    for_each = var.current_version_expiration_days == null ? [] : [var.current_version_expiration_days]

    content {
      id     = "expire-current-versions"
      status = "Enabled"

      filter {}

      expiration {
        days = rule.value
      }
    }
  }

  dynamic "rule" {
    for_each = var.prefix_expiration_days

    content {
      id     = "expire-${trimsuffix(replace(rule.key, "/", "-"), "-")}"
      status = "Enabled"

      filter {
        prefix = rule.key
      }

      expiration {
        days = rule.value
      }
    }
  }

  # Lifecycle rules on noncurrent versions need versioning to be configured first.
  depends_on = [aws_s3_bucket_versioning.this]
}

resource "aws_s3_bucket_logging" "this" {
  count = var.access_logging == null ? 0 : 1

  bucket        = aws_s3_bucket.this.id
  target_bucket = var.access_logging.target_bucket
  target_prefix = var.access_logging.target_prefix
}

data "aws_iam_policy_document" "this" {
  source_policy_documents = var.policy_documents

  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.this.arn,
      "${aws_s3_bucket.this.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid     = "DenyOutdatedTls"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.this.arn,
      "${aws_s3_bucket.this.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "NumericLessThan"
      variable = "s3:TlsVersion"
      values   = ["1.2"]
    }
  }

  # With enforce_encryption, no object can be written with any encryption but the bucket's:
  # SSE-S3 for an AES256 bucket; for a KMS bucket one of kms_key_arn and
  # additional_kms_key_arns. Only a request that names an encryption can name a wrong one:
  # each denial needs the header present (Null = false), so UploadPart and UploadPartCopy
  # (authorised as s3:PutObject, sent without encryption headers) and every request that
  # names none get the bucket's default encryption. Clients must name a KMS key by its ARN:
  # the condition compares the header as sent, it does not resolve aliases.
  dynamic "statement" {
    for_each = var.enforce_encryption ? local.encryption_denials : {}

    content {
      sid       = statement.key
      effect    = "Deny"
      actions   = ["s3:PutObject"]
      resources = ["${aws_s3_bucket.this.arn}/*"]

      principals {
        type        = "*"
        identifiers = ["*"]
      }

      dynamic "condition" {
        for_each = statement.value

        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
    }
  }
}

locals {
  allowed_kms_key_arns = compact(concat([var.kms_key_arn], var.additional_kms_key_arns))

  # PutObject denials, each a set of conditions that must all hold.
  kms_denials = {
    DenyPutObjectWithOtherKmsKey = [
      { test = "Null", variable = "s3:x-amz-server-side-encryption-aws-kms-key-id", values = ["false"] },
      { test = "StringNotEquals", variable = "s3:x-amz-server-side-encryption-aws-kms-key-id", values = local.allowed_kms_key_arns },
    ]
    DenyPutObjectWithOtherSse = [
      { test = "Null", variable = "s3:x-amz-server-side-encryption", values = ["false"] },
      { test = "StringNotEquals", variable = "s3:x-amz-server-side-encryption", values = ["aws:kms"] },
    ]
    # "aws:kms" without a key id means the AWS managed key aws/s3.
    DenyPutObjectWithAwsManagedKey = [
      { test = "StringEquals", variable = "s3:x-amz-server-side-encryption", values = ["aws:kms"] },
      { test = "Null", variable = "s3:x-amz-server-side-encryption-aws-kms-key-id", values = ["true"] },
    ]
  }

  sse_s3_denials = {
    DenyPutObjectWithOtherSse = [
      { test = "Null", variable = "s3:x-amz-server-side-encryption", values = ["false"] },
      { test = "StringNotEquals", variable = "s3:x-amz-server-side-encryption", values = ["AES256"] },
    ]
  }

  encryption_denials = local.kms_enabled ? local.kms_denials : local.sse_s3_denials
}

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = data.aws_iam_policy_document.this.json

  # S3 rejects concurrent PutBucketPolicy and PutPublicAccessBlock calls.
  depends_on = [aws_s3_bucket_public_access_block.this]

  lifecycle {
    precondition {
      condition     = !(var.enforce_encryption && local.kms_enabled) || var.kms_key_arn != null
      error_message = "enforce_encryption on an aws:kms bucket needs a kms_key_arn (the AWS managed key cannot be enforced)."
    }
  }
}
