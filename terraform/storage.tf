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
  alb_access_log_prefix = "alb"
}

# S3 server access logging and ALB access logs only deliver to buckets with SSE-S3
# default encryption, so the log bucket uses AES256 instead of a KMS key. Each data
# bucket may deliver its logs only under its own prefix, the load balancer under
# alb_access_log_prefix.
data "aws_elb_service_account" "current" {}

data "aws_iam_policy_document" "access_log_delivery" {
  statement {
    sid       = "AllowAlbAccessLogDelivery"
    actions   = ["s3:PutObject"]
    resources = ["${local.access_log_bucket_arn}/${local.alb_access_log_prefix}/AWSLogs/${local.account_id}/*"]

    principals {
      type        = "AWS"
      identifiers = [data.aws_elb_service_account.current.arn]
    }
  }


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

# Uploads land here, SSE-S3 (AES256): the one setting the upload service also sends
# with every object it creates (streamed and presigned uploads), and the only one the
# bucket policy accepts. Objects tagged sensitive=true are moved to the sensitive
# bucket (SSE-KMS under its CMK) by the sensitive-mover Lambda.
module "primary" {
  source = "./modules/secure-bucket"

  bucket             = var.primary_bucket_name
  force_destroy      = var.force_destroy_buckets
  sse_algorithm      = "AES256"
  enforce_encryption = true

  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days

  access_logging = {
    target_bucket = module.access_logs.id
    target_prefix = local.access_log_prefixes.primary
  }
}

module "sensitive" {
  source = "./modules/secure-bucket"

  bucket             = var.sensitive_bucket_name
  force_destroy      = var.force_destroy_buckets
  kms_key_arn        = aws_kms_key.this["sensitive"].arn
  enforce_encryption = true

  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days

  access_logging = {
    target_bucket = module.access_logs.id
    target_prefix = local.access_log_prefixes.sensitive
  }
}

# Backup copies of replaced files stay as noncurrent versions for backup_retention_days;
# backup-sync moves the backup of a deleted file under deleted/, where it expires after
# backup_retention_days (services/backup-sync/README.md). Copies of sensitive files are encrypted under the sensitive
# key (so the backup key alone never reads a vault file), all others under the backup
# key; the policy accepts exactly these two.
module "backup" {
  source = "./modules/secure-bucket"

  bucket                  = var.backup_bucket_name
  force_destroy           = var.force_destroy_buckets
  kms_key_arn             = aws_kms_key.this["backup"].arn
  additional_kms_key_arns = [aws_kms_key.this["sensitive"].arn]
  enforce_encryption      = true

  noncurrent_version_expiration_days = var.backup_retention_days
  prefix_expiration_days             = { "deleted/" = var.backup_retention_days }

  access_logging = {
    target_bucket = module.access_logs.id
    target_prefix = local.access_log_prefixes.backup
  }
}
