# S3 buckets (security checklist IN-01..IN-06). The baseline of every bucket lives in
# modules/secure-bucket; this file only sets what differs between them.

locals {
  data_bucket_names = {
    primary   = local.names.primary_bucket
    sensitive = local.names.sensitive_bucket
    backup    = local.names.backup_bucket
  }

  access_log_bucket_arn = "arn:${local.partition}:s3:::${local.names.access_log_bucket}"
  access_log_prefixes   = { for key, name in local.data_bucket_names : key => "s3/${name}/" }
  alb_access_log_prefix = "alb"

  # The same rule as the local emulator's primary bucket (packages/local-stack/src/provision.ts): POST of a
  # direct upload's form, PUT of a resumable upload's part (presigned, with the part's signed
  # x-amz-checksum-sha256; a File body brings its Content-Type), GET; the ETag readable.
  primary_cors_rule = {
    allowed_origins = [var.site_origin]
    allowed_methods = ["GET", "POST", "PUT"]
    allowed_headers = ["x-amz-checksum-sha256", "content-type"]
    expose_headers  = ["ETag"]
    max_age_seconds = 3000
  }
}

# S3 server access logging and ALB access logs only deliver to buckets with SSE-S3
# default encryption, so the log bucket uses AES256 instead of a KMS key. Each data
# bucket may deliver its logs only under its own prefix, the load balancer under
# alb_access_log_prefix.
#
# Load balancer logs: regions opened before August 2022 deliver them from an Elastic Load
# Balancing account of the region; the others (and, by now, these too) through the log
# delivery service principal. Both are granted where the region has such an account.
locals {
  elb_account_regions = [
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "af-south-1", "ap-east-1", "ap-south-1",
    "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-southeast-1", "ap-southeast-2",
    "ca-central-1", "eu-central-1", "eu-west-1", "eu-west-2", "eu-west-3", "eu-south-1",
    "eu-north-1", "me-south-1", "sa-east-1", "us-gov-west-1", "us-gov-east-1", "cn-north-1",
    "cn-northwest-1",
  ]
}

data "aws_elb_service_account" "current" {
  count = contains(local.elb_account_regions, local.region) ? 1 : 0
}

data "aws_iam_policy_document" "access_log_delivery" {
  statement {
    sid       = "AllowAlbAccessLogDelivery"
    actions   = ["s3:PutObject"]
    resources = ["${local.access_log_bucket_arn}/${local.alb_access_log_prefix}/AWSLogs/${local.account_id}/*"]

    principals {
      type        = "Service"
      identifiers = ["logdelivery.elasticloadbalancing.amazonaws.com"]
    }
  }

  dynamic "statement" {
    for_each = data.aws_elb_service_account.current

    content {
      sid       = "AllowAlbAccessLogDeliveryFromElbAccount"
      actions   = ["s3:PutObject"]
      resources = ["${local.access_log_bucket_arn}/${local.alb_access_log_prefix}/AWSLogs/${local.account_id}/*"]

      principals {
        type        = "AWS"
        identifiers = [statement.value.arn]
      }
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

  bucket        = local.names.access_log_bucket
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

  bucket             = local.names.primary_bucket
  force_destroy      = var.force_destroy_buckets
  sse_algorithm      = "AES256"
  enforce_encryption = true

  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days

  # The browser posts direct uploads to the bucket (presigned POST, from the site's
  # origin only) and reads the ETag of the answer.
  cors_rule = local.primary_cors_rule

  access_logging = {
    target_bucket = module.access_logs.id
    target_prefix = local.access_log_prefixes.primary
  }
}

module "sensitive" {
  source = "./modules/secure-bucket"

  bucket             = local.names.sensitive_bucket
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

  bucket                  = local.names.backup_bucket
  force_destroy           = var.force_destroy_buckets
  kms_key_arn             = aws_kms_key.this["backup"].arn
  additional_kms_key_arns = [aws_kms_key.this["sensitive"].arn]
  enforce_encryption      = true

  noncurrent_version_expiration_days = var.backup_retention_days
  prefix_expiration_days             = { "deleted/" = var.backup_retention_days }

  # No serving role can destroy a backup before its retention is over: every version is
  # locked backup_retention_days (governance mode; no role holds the bypass).
  object_lock_retention_days = var.backup_retention_days

  access_logging = {
    target_bucket = module.access_logs.id
    target_prefix = local.access_log_prefixes.backup
  }
}
