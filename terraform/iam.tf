# IAM (security checklist IN-13): each role gets only the actions and resources its code
# uses. The instance role runs all three services (they share the instances), so it is
# the union of one policy per service, each of which could become a task role alone.
# "*" resources only where the action has no resource-level permissions.

locals {
  bucket_arns = {
    primary   = module.primary.arn
    sensitive = module.sensitive.arn
    backup    = module.backup.arn
  }
  table_arns = { for key, table in aws_dynamodb_table.this : key => table.arn }

  # Object keys that are files, and the upload service's staging prefix for direct
  # browser uploads (not files until completed).
  file_prefix    = "users/"
  staging_prefix = "incoming/"

  dynamodb_item_actions = [
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
  ]

  instance_policy_documents = {
    pull-images           = data.aws_iam_policy_document.pull_images.json
    write-logs            = data.aws_iam_policy_document.write_logs.json
    session-manager       = data.aws_iam_policy_document.session_manager.json
    service-configuration = data.aws_iam_policy_document.service_configuration.json
    auth                  = data.aws_iam_policy_document.auth.json
    upload                = data.aws_iam_policy_document.upload.json
    backup-sync           = data.aws_iam_policy_document.backup_sync.json
  }
}

data "aws_iam_policy_document" "pull_images" {
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # no resource-level permissions
  }

  statement {
    sid = "PullServiceImages"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
    ]
    resources = [for repository in aws_ecr_repository.this : repository.arn]
  }
}

data "aws_iam_policy_document" "write_logs" {
  statement {
    sid       = "WriteServiceLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for group in aws_cloudwatch_log_group.service : "${group.arn}:*"]
  }
}

# What the SSM agent needs for Session Manager (no SSH); these actions have no
# resource-level permissions.
data "aws_iam_policy_document" "session_manager" {
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
}

data "aws_iam_policy_document" "service_configuration" {
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

# auth: accounts, sessions and login throttling; signs with the key in SSM.
data "aws_iam_policy_document" "auth" {
  source_policy_documents = [data.aws_iam_policy_document.jwt_signing_key_read.json]

  statement {
    sid     = "AuthTables"
    actions = local.dynamodb_item_actions
    resources = flatten([
      for key in ["users", "sessions", "throttle"] : [local.table_arns[key], "${local.table_arns[key]}/index/*"]
    ])
  }
}

# upload: streams files into the primary bucket (direct uploads through the staging
# prefix, promoted by a copy), serves downloads from the primary and sensitive buckets
# (presigned URLs carry its permissions), deletes files with all their versions, sweeps
# unfinished uploads, keeps the files table; verifies tokens with the public keys.
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
    sid       = "SensitiveObjects"
    actions   = ["s3:DeleteObject", "s3:GetObject", "s3:GetObjectTagging"]
    resources = ["${local.bucket_arns.sensitive}/${local.file_prefix}*"]
  }

  statement {
    sid       = "ListBuckets"
    actions   = ["s3:ListBucket", "s3:ListBucketMultipartUploads", "s3:ListBucketVersions"]
    resources = [local.bucket_arns.primary, local.bucket_arns.sensitive]
  }

  statement {
    sid       = "ReadSensitiveObjects"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.this["sensitive"].arn]
  }

  statement {
    sid       = "FilesTable"
    actions   = concat(local.dynamodb_item_actions, ["dynamodb:Scan"])
    resources = [local.table_arns.files, "${local.table_arns.files}/index/*"]
  }
}

# backup-sync: copies every file into the backup bucket, restores, reconciles, and
# consumes the backup event queue (services/backup-sync/README.md, "IAM").
data "aws_iam_policy_document" "backup_sync" {
  source_policy_documents = [data.aws_iam_policy_document.jwt_public_keys_read.json]

  statement {
    sid       = "ListFiles"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arns.primary, local.bucket_arns.sensitive]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.file_prefix}*"]
    }
  }

  statement {
    sid = "ReadAndRestoreFiles"
    actions = [
      "s3:GetObject",
      "s3:GetObjectVersion",
      "s3:PutObject",
      "s3:PutObjectTagging",
    ]
    resources = [
      "${local.bucket_arns.primary}/${local.file_prefix}*",
      "${local.bucket_arns.sensitive}/${local.file_prefix}*",
    ]
  }

  # HeadBucket (its /ready) is authorised as s3:ListBucket without a prefix.
  statement {
    sid       = "ReadinessOfTheBackupBucket"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arns.backup]
  }

  statement {
    sid       = "ListBackupVersions"
    actions   = ["s3:ListBucketVersions"]
    resources = [local.bucket_arns.backup]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.file_prefix}*", "deleted/${local.file_prefix}*"]
    }
  }

  statement {
    sid = "Backups"
    actions = [
      "s3:AbortMultipartUpload",
      "s3:DeleteObjectVersion",
      "s3:GetObject",
      "s3:GetObjectVersion",
      "s3:PutObject",
      "s3:PutObjectTagging",
    ]
    resources = [
      "${local.bucket_arns.backup}/${local.file_prefix}*",
      "${local.bucket_arns.backup}/deleted/${local.file_prefix}*",
    ]
  }

  statement {
    sid       = "BackupAndSensitiveKeys"
    actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"]
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
    actions   = ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:Scan", "dynamodb:UpdateItem"]
    resources = [local.table_arns.files]
  }

  # An admin's current role, and whether a restore's owner still has an account (a scan by id).
  statement {
    sid       = "Accounts"
    actions   = ["dynamodb:GetItem", "dynamodb:Scan"]
    resources = [local.table_arns.users]
  }
}

resource "aws_iam_policy" "instance" {
  for_each = local.instance_policy_documents

  name        = "${var.name_prefix}-instance-${each.key}"
  description = "Service instances: ${each.key}"
  policy      = each.value
}

resource "aws_iam_role_policy_attachment" "instance" {
  for_each = local.instance_policy_documents

  role       = aws_iam_role.instance.name
  policy_arn = aws_iam_policy.instance[each.key].arn
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
  statement {
    sid       = "ListFileVersions"
    actions   = ["s3:ListBucket", "s3:ListBucketVersions"]
    resources = [local.bucket_arns.primary]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.file_prefix}*", "${local.staging_prefix}*"]
    }
  }

  # The vault's versions of a key: a copy is checked against the copies made before it (R10).
  statement {
    sid       = "ListVault"
    actions   = ["s3:ListBucket", "s3:ListBucketVersions"]
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
      "s3:GetObject",
      "s3:GetObjectTagging",
      "s3:GetObjectVersion",
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
    sid       = "SensitiveKey"
    actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"]
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
  name               = "${var.name_prefix}-sensitive-mover"
  description        = "sensitive-mover Lambda: moves files tagged sensitive=true to the sensitive bucket"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume_role.json
}

resource "aws_iam_role_policy" "sensitive_mover" {
  name   = "sensitive-mover"
  role   = aws_iam_role.sensitive_mover.id
  policy = data.aws_iam_policy_document.sensitive_mover.json
}
