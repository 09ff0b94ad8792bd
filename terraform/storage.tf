# S3 buckets (security checklist IN-01..IN-06). The baseline of every bucket lives in
# modules/secure-bucket; this file only sets what differs between them.

locals {
  data_bucket_names = {
    primary   = var.primary_bucket_name
    sensitive = var.sensitive_bucket_name
    backup    = var.backup_bucket_name
  }

  access_log_bucket_arn = "arn:${local.partition}:s3:::${var.access_log_bucket_name}"
  access_log_prefixes   = { for key, name in local.data_bucket_names : key => "s3/${name}/" }
}

# S3 server access logging only delivers to buckets with SSE-S3 default
# encryption, so the log bucket uses AES256 instead of a KMS key. Each data
# bucket may deliver its logs only under its own prefix.
data "aws_iam_policy_document" "access_log_delivery" {
  dynamic "statement" {
    for_each = local.data_bucket_names

    content {
      sid       = "AllowAccessLogDeliveryFrom${title(statement.key)}"
      actions   = ["s3:PutObject"]
      resources = ["${local.access_log_bucket_arn}/${local.access_log_prefixes[statement.key]}*"]

      principals {
        type        = "Service"
        identifiers = ["logging.s3.amazonaws.com"]
      }

      condition {
        test     = "ArnLike"
        variable = "aws:SourceArn"
        values   = ["arn:${local.partition}:s3:::${statement.value}"]
      }

      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [local.account_id]
      }
    }
  }
}

module "access_logs" {
  source = "./modules/secure-bucket"

  bucket        = var.access_log_bucket_name
  force_destroy = var.force_destroy_buckets
  sse_algorithm = "AES256"

  current_version_expiration_days    = var.access_log_retention_days
  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days

  policy_documents = [data.aws_iam_policy_document.access_log_delivery.json]
}

# Uploads land here. SSE-KMS with the AWS managed key aws/s3: a request that asks
# for "aws:kms" without naming a key is encrypted with aws/s3 whatever the
# bucket default says, so a CMK here would protect only header-less writes.
# Objects tagged sensitive=true are moved to the sensitive bucket by the Lambda.
module "primary" {
  source = "./modules/secure-bucket"

  bucket        = var.primary_bucket_name
  force_destroy = var.force_destroy_buckets

  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days

  access_logging = {
    target_bucket = module.access_logs.id
    target_prefix = local.access_log_prefixes.primary
  }
}

module "sensitive" {
  source = "./modules/secure-bucket"

  bucket          = var.sensitive_bucket_name
  force_destroy   = var.force_destroy_buckets
  kms_key_arn     = aws_kms_key.this["sensitive"].arn
  enforce_kms_key = true

  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days

  access_logging = {
    target_bucket = module.access_logs.id
    target_prefix = local.access_log_prefixes.sensitive
  }
}

# Backup copies of deleted or replaced files stay as noncurrent versions for
# backup_retention_days.
module "backup" {
  source = "./modules/secure-bucket"

  bucket        = var.backup_bucket_name
  force_destroy = var.force_destroy_buckets
  kms_key_arn   = aws_kms_key.this["backup"].arn

  noncurrent_version_expiration_days = var.backup_retention_days

  access_logging = {
    target_bucket = module.access_logs.id
    target_prefix = local.access_log_prefixes.backup
  }
}
