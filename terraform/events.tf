# Object events. The primary bucket invokes the sensitive-mover for every object
# created under users/ (lambda.tf); the primary and sensitive buckets also send their
# events to EventBridge, where one rule passes file creations and deletions to the
# durable queue backup-sync consumes (with a dead-letter queue).

locals {
  # Built from the names, so that policies need not wait for the queues.
  backup_queue_arns = {
    queue = "arn:${local.partition}:sqs:${local.region}:${local.account_id}:${local.names.backup_events_queue}"
    dlq   = "arn:${local.partition}:sqs:${local.region}:${local.account_id}:${local.names.backup_events_queue}-dlq"
  }
}

resource "aws_s3_bucket_notification" "primary" {
  bucket      = module.primary.id
  eventbridge = true

  lambda_function {
    id                  = "sensitive-mover"
    lambda_function_arn = aws_lambda_function.sensitive_mover.arn
    events              = ["s3:ObjectCreated:*"]
    filter_prefix       = local.file_prefix
  }

  # Bytes posted to a direct upload's staging key after /complete are removed on arrival.
  lambda_function {
    id                  = "sensitive-mover-staging"
    lambda_function_arn = aws_lambda_function.sensitive_mover.arn
    events              = ["s3:ObjectCreated:*"]
    filter_prefix       = local.staging_prefix
  }

  depends_on = [aws_lambda_permission.primary_bucket]
}

resource "aws_s3_bucket_notification" "sensitive" {
  bucket      = module.sensitive.id
  eventbridge = true
}

resource "aws_cloudwatch_event_rule" "backup" {
  name        = "${local.name}-backup-object-events"
  description = "File objects created or deleted in the primary and sensitive buckets, for backup-sync"

  event_pattern = jsonencode({
    source      = ["aws.s3"]
    detail-type = ["Object Created", "Object Deleted"]
    detail = {
      bucket = { name = [module.primary.id, module.sensitive.id] }
      object = { key = [{ prefix = local.file_prefix }] }
    }
  })
}

resource "aws_cloudwatch_event_target" "backup" {
  rule      = aws_cloudwatch_event_rule.backup.name
  target_id = "backup-events-queue"
  arn       = aws_sqs_queue.backup_events.arn

  retry_policy {
    maximum_event_age_in_seconds = 24 * 3600
    maximum_retry_attempts       = 185
  }

  dead_letter_config {
    arn = aws_sqs_queue.backup_events_dlq.arn
  }
}

resource "aws_sqs_queue" "backup_events_dlq" {
  name                      = "${local.names.backup_events_queue}-dlq"
  message_retention_seconds = 14 * 24 * 3600
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "backup_events" {
  name                       = local.names.backup_events_queue
  visibility_timeout_seconds = 60
  message_retention_seconds  = 4 * 24 * 3600
  sqs_managed_sse_enabled    = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.backup_events_dlq.arn
    maxReceiveCount     = 5
  })
}

# EventBridge may deliver (and dead-letter) the rule's events, nothing else may send.
data "aws_iam_policy_document" "backup_queue" {
  for_each = local.backup_queue_arns

  statement {
    sid       = "EventBridgeDeliversBackupObjectEvents"
    actions   = ["sqs:SendMessage"]
    resources = [each.value]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.backup.arn]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [each.value]

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
}

resource "aws_sqs_queue_policy" "backup_events" {
  queue_url = aws_sqs_queue.backup_events.id
  policy    = data.aws_iam_policy_document.backup_queue["queue"].json
}

resource "aws_sqs_queue_policy" "backup_events_dlq" {
  queue_url = aws_sqs_queue.backup_events_dlq.id
  policy    = data.aws_iam_policy_document.backup_queue["dlq"].json
}
