# IAM (security checklist IN-13, IN-14): each service runs in its own Auto Scaling group
# under a role of its own (compute.tf), and each role grants exactly the AWS calls its
# service's code makes. Those calls are listed beside the code (services/*/iam-inventory.json)
# and evaluated against the applied policies by the Terraform check (tests/terraform/src/
# iam-evaluation.ts): every listed call allowed, a list of calls that must stay impossible
# denied. "*" resources only where the action has no resource-level permissions.

locals {
  bucket_arns = {
    primary   = module.primary.arn
    sensitive = module.sensitive.arn
    backup    = module.backup.arn
  }
  table_arns = { for key, table in aws_dynamodb_table.this : key => table.arn }

  # Object keys that are files, the upload service's staging prefix for direct browser
  # uploads (not files until completed), and where backup-sync keeps deleted files' backups.
  file_prefix    = "users/"
  staging_prefix = "incoming/"
  deleted_prefix = "deleted/"

  # What S3 sends KMS for an object under a bucket key: the bucket's ARN as context.
  s3_kms_conditions = {
    for bucket, arn in local.bucket_arns : bucket => [
      { test = "StringEquals", variable = "kms:ViaService", values = ["s3.${local.region}.amazonaws.com"] },
      { test = "StringLike", variable = "kms:EncryptionContext:aws:s3:arn", values = [arn, "${arn}/*"] },
    ]
  }

  # Each service's policies: what its instance needs (its image, its logs, Session
  # Manager, the configuration) and what its code calls.
  service_policy_documents = {
    for name in keys(local.services) : name => {
      instance = data.aws_iam_policy_document.instance[name].json
      service = {
        auth          = data.aws_iam_policy_document.auth.json
        upload        = data.aws_iam_policy_document.upload.json
        "backup-sync" = data.aws_iam_policy_document.backup_sync.json
      }[name]
    }
  }
}

# What the instance itself does for its one service: pull the image, ship the
# container's logs, answer Session Manager, read the configuration parameter.
data "aws_iam_policy_document" "instance" {
  for_each = local.services

  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # no resource-level permissions
  }

  statement {
    sid = "PullServiceImage"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
    ]
    resources = [aws_ecr_repository.this[each.key].arn]
  }

  statement {
    sid       = "WriteServiceLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.service[each.key].arn}:*"]
  }

  # What the SSM agent needs for Session Manager (no SSH); no resource-level permissions.
  statement {
    sid = "SessionManager"
    actions = [
      "ec2messages:AcknowledgeMessage",
      "ec2messages:DeleteMessage",
      "ec2messages:FailMessage",
      "ec2messages:GetEndpoint",
      "ec2messages:GetMessages",
      "ec2messages:SendReply",
      "ssm:UpdateInstanceInformation",
      "ssmmessages:CreateControlChannel",
      "ssmmessages:CreateDataChannel",
      "ssmmessages:OpenControlChannel",
      "ssmmessages:OpenDataChannel",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "ReadServiceConfiguration"
    actions   = ["ssm:GetParameter"]
    resources = [aws_ssm_parameter.service_environment.arn]
  }

  statement {
    sid       = "DecryptServiceConfiguration"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.this["secrets"].arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["ssm.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:PARAMETER_ARN"
      values   = [aws_ssm_parameter.service_environment.arn]
    }
  }
}

# auth: accounts, sessions and login throttling; signs with the key in SSM. No file
# bucket, no file key.
data "aws_iam_policy_document" "auth" {
  source_policy_documents = [data.aws_iam_policy_document.jwt_signing_key_read.json]

  statement {
    sid       = "Accounts"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
    resources = [local.table_arns.users]
  }

  statement {
    sid       = "Sessions"
    actions   = ["dynamodb:ConditionCheckItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
    resources = [local.table_arns.sessions]
  }

  statement {
    sid       = "LoginThrottle"
    actions   = ["dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
    resources = [local.table_arns.throttle]
  }

  statement {
    sid       = "ReadinessOfTheUsersTable"
    actions   = ["dynamodb:DescribeTable"]
    resources = [local.table_arns.users]
  }
}

# upload: streams files into the primary bucket (direct uploads through the staging
# prefix, promoted by a copy), serves downloads from the primary and sensitive buckets
# (presigned URLs carry its permissions), deletes files with all their versions in
# both, sweeps unfinished uploads, keeps the files table; verifies tokens with the
# public keys. Nothing in the backup bucket, not the signing key.
data "aws_iam_policy_document" "upload" {
  source_policy_documents = [data.aws_iam_policy_document.jwt_public_keys_read.json]

  statement {
    sid = "PrimaryObjects"
    actions = [
      "s3:AbortMultipartUpload",
      "s3:DeleteObject",
      "s3:DeleteObjectVersion",
      "s3:GetObject",
      "s3:GetObjectTagging",
      "s3:GetObjectVersion",
      "s3:ListMultipartUploadParts",
      "s3:PutObject",
      "s3:PutObjectTagging",
    ]
    resources = [
      "${local.bucket_arns.primary}/${local.file_prefix}*",
      "${local.bucket_arns.primary}/${local.staging_prefix}*",
    ]
  }

  statement {
    sid = "SensitiveObjects"
    actions = [
      "s3:DeleteObject",
      "s3:DeleteObjectVersion",
      "s3:GetObject",
      "s3:PutObjectTagging",
    ]
    resources = ["${local.bucket_arns.sensitive}/${local.file_prefix}*"]
  }

  # s3:ListBucket without a prefix: HeadBucket (/ready), and a 404 (not 403) for a
  # HeadObject of an absent key.
  statement {
    sid       = "ListBuckets"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arns.primary, local.bucket_arns.sensitive]
  }

  statement {
    sid       = "ListVersions"
    actions   = ["s3:ListBucketVersions"]
    resources = [local.bucket_arns.primary, local.bucket_arns.sensitive]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.file_prefix}*", "${local.staging_prefix}*"]
    }
  }

  statement {
    sid       = "ReadSensitiveObjects"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.this["sensitive"].arn]

    dynamic "condition" {
      for_each = local.s3_kms_conditions.sensitive

      content {
        test     = condition.value.test
        variable = condition.value.variable
        values   = condition.value.values
      }
    }
  }

  # Records, the usage item and the quota reservations (#reservation#<id> items, put and
  # deleted inside transactions with the usage update).
  statement {
    sid = "FilesTable"
    actions = [
      "dynamodb:DeleteItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:Scan",
      "dynamodb:UpdateItem",
    ]
    resources = [local.table_arns.files]
  }

  # Whether a token's account still exists, and its current role (the file API's account check,
  # cached for ACCOUNT_CHECK_CACHE_SECONDS): only the id and the role, never a password hash.
  statement {
    sid       = "ReadAccountRoles"
    actions   = ["dynamodb:GetItem"]
    resources = [local.table_arns.users]

    condition {
      test     = "ForAllValues:StringEquals"
      variable = "dynamodb:Attributes"
      values   = ["username", "id", "role"]
    }

    condition {
      test     = "StringEquals"
      variable = "dynamodb:Select"
      values   = ["SPECIFIC_ATTRIBUTES"]
    }
  }

  # The rate limits shared by every instance (SharedRateLimitStore): one conditional update per
  # request, a conditional put to start a key's next window. Only the service's own counters
  # (rl#upload#...), never auth's login throttle or rate limits in the same table.
  statement {
    sid       = "SharedRateLimits"
    actions   = ["dynamodb:PutItem", "dynamodb:UpdateItem"]
    resources = [local.table_arns.throttle]

    condition {
      test     = "ForAllValues:StringLike"
      variable = "dynamodb:LeadingKeys"
      values   = ["rl#upload#*"]
    }
  }
}

# backup-sync: copies every file into the backup bucket, restores, reconciles, and
# consumes the backup event queue. It may delete backup versions (a deleted file's
# backup moves under deleted/, expired ones go), but the bucket's Object Lock refuses
# the delete of a version still under retention, and no role may bypass it.
data "aws_iam_policy_document" "backup_sync" {
  source_policy_documents = [data.aws_iam_policy_document.jwt_public_keys_read.json]

  # Without a prefix: HeadBucket (/ready), 404 for absent keys; with one: the listings.
  statement {
    sid       = "ListBuckets"
    actions   = ["s3:ListBucket"]
    resources = values(local.bucket_arns)
  }

  statement {
    sid       = "ListBackupVersions"
    actions   = ["s3:ListBucketVersions"]
    resources = [local.bucket_arns.backup]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.file_prefix}*", "${local.deleted_prefix}${local.file_prefix}*"]
    }
  }

  statement {
    sid = "ReadAndRestoreFiles"
    actions = [
      "s3:AbortMultipartUpload",
      "s3:DeleteObjectVersion",
      "s3:GetObject",
      "s3:GetObjectVersion",
      # GetObjectAttributes of a version: the parts of a file copied in parts.
      "s3:GetObjectVersionAttributes",
      "s3:PutObject",
      "s3:PutObjectTagging",
    ]
    resources = [
      "${local.bucket_arns.primary}/${local.file_prefix}*",
      "${local.bucket_arns.sensitive}/${local.file_prefix}*",
    ]
  }

  statement {
    sid = "Backups"
    actions = [
      "s3:AbortMultipartUpload",
      "s3:DeleteObject",
      "s3:DeleteObjectVersion",
      "s3:GetObject",
      "s3:GetObjectVersion",
      "s3:GetObjectVersionAttributes",
      "s3:PutObject",
      "s3:PutObjectTagging",
    ]
    resources = [
      "${local.bucket_arns.backup}/${local.file_prefix}*",
      "${local.bucket_arns.backup}/${local.deleted_prefix}${local.file_prefix}*",
    ]
  }

  # Copies out of and into the backup bucket (under the backup or the sensitive key) and
  # restores into the vault (under the sensitive key), through S3 only.
  statement {
    sid       = "BackupKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this["backup"].arn]

    dynamic "condition" {
      for_each = local.s3_kms_conditions.backup

      content {
        test     = condition.value.test
        variable = condition.value.variable
        values   = condition.value.values
      }
    }
  }

  statement {
    sid       = "SensitiveKeyThroughS3"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this["sensitive"].arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "StringLike"
      variable = "kms:EncryptionContext:aws:s3:arn"
      values   = [local.bucket_arns.sensitive, "${local.bucket_arns.sensitive}/*", local.bucket_arns.backup, "${local.bucket_arns.backup}/*"]
    }
  }

  # The copier compares a copy's key with the configured one (DescribeKey, called directly;
  # the key policies leave DescribeKey to IAM without kms:ViaService).
  statement {
    sid       = "DescribeKeys"
    actions   = ["kms:DescribeKey"]
    resources = [aws_kms_key.this["backup"].arn, aws_kms_key.this["sensitive"].arn]
  }

  statement {
    sid = "BackupEventQueue"
    actions = [
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
      "sqs:ReceiveMessage",
    ]
    resources = [local.backup_queue_arns.queue]
  }

  # Restores (records, usage) and the usage reconciliation (a scan for the users, a query of
  # each user's partition, reservations of dead uploads deleted with their bytes).
  statement {
    sid       = "FilesTable"
    actions   = ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan", "dynamodb:UpdateItem"]
    resources = [local.table_arns.files]
  }

  # The role of a caller of its admin routes, and whether a restore's owner still has an account
  # (a scan by id).
  statement {
    sid       = "ReadUsers"
    actions   = ["dynamodb:GetItem", "dynamodb:Scan"]
    resources = [local.table_arns.users]
  }
}

resource "aws_iam_role_policy" "service" {
  for_each = merge([
    for name, documents in local.service_policy_documents : {
      for kind, document in documents : "${name}/${kind}" => { role = name, kind = kind, policy = document }
    }
  ]...)

  name   = "${each.value.role}-${each.value.kind}"
  role   = aws_iam_role.service[each.value.role].id
  policy = each.value.policy
}

################################################################################
# sensitive-mover (services/sensitive-mover/README.md, "IAM")
################################################################################

data "aws_iam_policy_document" "lambda_assume_role" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

data "aws_iam_policy_document" "sensitive_mover" {
  # Without a prefix: a 404 (not 403) for a HeadObject of an absent key.
  statement {
    sid       = "ListBuckets"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arns.primary, local.bucket_arns.sensitive]
  }

  # A file's versions (the move deletes every plaintext one) and a staging key's late bytes.
  statement {
    sid       = "ListFileVersions"
    actions   = ["s3:ListBucketVersions"]
    resources = [local.bucket_arns.primary]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.file_prefix}*", "${local.staging_prefix}*"]
    }
  }

  # The vault's versions of a key: a copy is checked against the copies made before it (R10).
  statement {
    sid       = "ListVaultVersions"
    actions   = ["s3:ListBucketVersions"]
    resources = [local.bucket_arns.sensitive]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.file_prefix}*"]
    }
  }

  statement {
    sid = "ReadAndRemovePrimaryFiles"
    actions = [
      "s3:DeleteObjectVersion",
      "s3:GetObjectVersion",
      # GetObjectAttributes of a version: the parts of a file copied in parts.
      "s3:GetObjectVersionAttributes",
      "s3:GetObjectVersionTagging",
    ]
    resources = ["${local.bucket_arns.primary}/${local.file_prefix}*"]
  }

  # A direct upload's form posted again after /complete: the late bytes go at once.
  statement {
    sid       = "RemoveLateStagedUploads"
    actions   = ["s3:DeleteObjectVersion"]
    resources = ["${local.bucket_arns.primary}/${local.staging_prefix}*"]
  }

  statement {
    sid = "WriteSensitiveFiles"
    actions = [
      "s3:AbortMultipartUpload",
      "s3:DeleteObjectVersion",
      "s3:GetObject",
      "s3:GetObjectVersion",
      "s3:PutObject",
      "s3:PutObjectTagging",
    ]
    resources = ["${local.bucket_arns.sensitive}/${local.file_prefix}*"]
  }

  statement {
    sid       = "SensitiveKeyThroughS3"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this["sensitive"].arn]

    dynamic "condition" {
      for_each = local.s3_kms_conditions.sensitive

      content {
        test     = condition.value.test
        variable = condition.value.variable
        values   = condition.value.values
      }
    }
  }

  statement {
    sid       = "DescribeSensitiveKey"
    actions   = ["kms:DescribeKey"]
    resources = [aws_kms_key.this["sensitive"].arn]
  }

  statement {
    sid       = "FileRecords"
    actions   = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    resources = [local.table_arns.files]
  }

  statement {
    sid       = "OnFailureDestination"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.sensitive_mover_failures.arn]
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.sensitive_mover.arn}:*"]
  }

  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]
    resources = ["*"] # no resource-level permissions
  }
}

resource "aws_iam_role" "sensitive_mover" {
  name               = "${local.name}-sensitive-mover"
  description        = "sensitive-mover Lambda: moves files tagged sensitive=true to the sensitive bucket"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume_role.json
}

resource "aws_iam_role_policy" "sensitive_mover" {
  name   = "sensitive-mover"
  role   = aws_iam_role.sensitive_mover.id
  policy = data.aws_iam_policy_document.sensitive_mover.json
}
