# The sensitive-mover Lambda (security checklist IN-11): invoked by the primary bucket
# for every object created under users/, moves objects tagged sensitive=true to the
# sensitive bucket. The code is the zip the build makes
# (`npm run bundle -w @scs/sensitive-mover`, file index.js inside).

resource "aws_cloudwatch_log_group" "sensitive_mover" {
  name              = "/aws/lambda/${local.names.lambda_function}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this["observability"].arn
}

resource "aws_lambda_function" "sensitive_mover" {
  function_name    = local.names.lambda_function
  description      = "Moves files tagged sensitive=true from the primary to the sensitive bucket (SSE-KMS)"
  role             = aws_iam_role.sensitive_mover.arn
  filename         = var.lambda_zip_path
  source_code_hash = filebase64sha256(var.lambda_zip_path)
  handler          = "index.handler"
  runtime          = "nodejs22.x"
  architectures    = ["arm64"]
  memory_size      = var.lambda_memory_mib
  timeout          = var.lambda_timeout_seconds

  reserved_concurrent_executions = var.lambda_reserved_concurrency

  # No secrets: names and the key ARN only.
  environment {
    variables = {
      PRIMARY_BUCKET       = module.primary.id
      SENSITIVE_BUCKET     = module.sensitive.id
      SENSITIVE_KMS_KEY_ID = aws_kms_key.this["sensitive"].arn
      FILES_TABLE          = aws_dynamodb_table.this["files"].name
      LOG_LEVEL            = var.log_level
    }
  }

  tracing_config {
    mode = "Active"
  }

  # The log group (retention, encryption) exists before the first invocation.
  depends_on = [aws_cloudwatch_log_group.sensitive_mover, aws_iam_role_policy.sensitive_mover]
}

# Asynchronous invocations (S3 notifications) are retried twice, then the event goes
# to the failure queue, watched by an alarm.
resource "aws_lambda_function_event_invoke_config" "sensitive_mover" {
  function_name                = aws_lambda_function.sensitive_mover.function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 6 * 3600

  destination_config {
    on_failure {
      destination = aws_sqs_queue.sensitive_mover_failures.arn
    }
  }
}

resource "aws_sqs_queue" "sensitive_mover_failures" {
  name                      = local.names.sensitive_mover_failures_queue
  message_retention_seconds = 14 * 24 * 3600
  sqs_managed_sse_enabled   = true
}

# Only this account's primary bucket may invoke it.
resource "aws_lambda_permission" "primary_bucket" {
  statement_id   = "AllowPrimaryBucketObjectCreated"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.sensitive_mover.function_name
  principal      = "s3.amazonaws.com"
  source_arn     = module.primary.arn
  source_account = local.account_id
}
