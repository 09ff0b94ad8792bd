# Customer managed keys (security checklist IN-03, IN-12). Each key policy delegates to
# IAM in this account only: administration explicitly, cryptographic use only
# through the one AWS service that uses the key (kms:ViaService). The observability
# key also lets CloudWatch Logs encrypt this account's log groups and CloudWatch
# alarms publish to the encrypted alarm topic. No wildcard principal, rotation on,
# deletion window of at least 7 days.

locals {
  kms_keys = {
    sensitive = {
      alias       = local.names.sensitive_kms_key_alias
      description = "${local.name}: SSE-KMS for the sensitive bucket"
      via_service = "s3"
    }
    backup = {
      alias       = local.names.backup_kms_key_alias
      description = "${local.name}: SSE-KMS for the backup bucket"
      via_service = "s3"
    }
    secrets = {
      alias       = local.names.secrets_kms_key_alias
      description = "${local.name}: SSM SecureString parameters (signing key, service configuration)"
      via_service = "ssm"
    }
    observability = {
      alias       = local.names.observability_kms_key_alias
      description = "${local.name}: CloudWatch log groups and the alarm SNS topic"
      via_service = "sns"
    }
  }

  kms_admin_actions = [
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
  ]

  kms_usage_actions = [
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
  ]
}

data "aws_iam_policy_document" "kms" {
  for_each = local.kms_keys

  statement {
    sid       = "AccountAdministersKeyThroughIam"
    actions   = local.kms_admin_actions
    resources = ["*"] # in a key policy, "*" is this key

    principals {
      type        = "AWS"
      identifiers = [local.account_root_arn]
    }
  }

  statement {
    sid       = "AccountUsesKeyThrough${upper(each.value.via_service)}"
    actions   = local.kms_usage_actions
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [local.account_root_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["${each.value.via_service}.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:CallerAccount"
      values   = [local.account_id]
    }
  }
}

# What AWS services themselves may do with the observability key.
data "aws_iam_policy_document" "observability_kms" {
  source_policy_documents = [data.aws_iam_policy_document.kms["observability"].json]

  statement {
    sid = "CloudWatchLogsEncryptsThisAccountsLogGroups"
    actions = [
      "kms:Decrypt",
      "kms:DescribeKey",
      "kms:Encrypt",
      "kms:GenerateDataKey*",
      "kms:ReEncrypt*",
    ]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
    }
  }

  statement {
    sid       = "CloudWatchAlarmsPublishToTheEncryptedTopic"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_kms_key" "this" {
  for_each = local.kms_keys

  description             = each.value.description
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_in_days
  policy                  = each.key == "observability" ? data.aws_iam_policy_document.observability_kms.json : data.aws_iam_policy_document.kms[each.key].json
}

resource "aws_kms_alias" "this" {
  for_each = local.kms_keys

  name          = each.value.alias
  target_key_id = aws_kms_key.this[each.key].key_id
}
