# Shared lookups and the services' configuration. The stack is split by concern:
# network.tf, alb.tf, compute.tf, iam.tf, lambda.tf, events.tf, monitoring.tf,
# kms.tf, storage.tf, dynamodb.tf, ssm.tf.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  account_root_arn = "arn:${local.partition}:iam::${local.account_id}:root"

  # Every name is derived from the prefix and the environment (two environments side by
  # side in one account never collide); bucket names also carry the account id, being
  # global. A variable set to a name wins.
  name = "${var.name_prefix}-${var.environment}"
  names = {
    primary_bucket                 = coalesce(var.primary_bucket_name, "${local.name}-primary-${local.account_id}")
    sensitive_bucket               = coalesce(var.sensitive_bucket_name, "${local.name}-sensitive-${local.account_id}")
    backup_bucket                  = coalesce(var.backup_bucket_name, "${local.name}-backup-${local.account_id}")
    access_log_bucket              = coalesce(var.access_log_bucket_name, "${local.name}-access-logs-${local.account_id}")
    users_table                    = coalesce(var.users_table_name, "${local.name}-users")
    sessions_table                 = coalesce(var.sessions_table_name, "${local.name}-sessions")
    throttle_table                 = coalesce(var.throttle_table_name, "${local.name}-throttle")
    files_table                    = coalesce(var.files_table_name, "${local.name}-files")
    sensitive_kms_key_alias        = coalesce(var.sensitive_kms_key_alias, "alias/${local.name}-sensitive")
    backup_kms_key_alias           = coalesce(var.backup_kms_key_alias, "alias/${local.name}-backup")
    secrets_kms_key_alias          = coalesce(var.secrets_kms_key_alias, "alias/${local.name}-secrets")
    observability_kms_key_alias    = coalesce(var.observability_kms_key_alias, "alias/${local.name}-observability")
    ecr_repository_prefix          = coalesce(var.ecr_repository_prefix, local.name)
    lambda_function                = coalesce(var.lambda_function_name, "${local.name}-sensitive-mover")
    sensitive_mover_failures_queue = coalesce(var.sensitive_mover_failures_queue_name, "${local.name}-object-events-dlq")
    backup_events_queue            = coalesce(var.backup_events_queue_name, "${local.name}-backup-events")
  }
}

# The services' environment on AWS (the product contract's variable names), stored in
# SSM for the instances and given as an output. SENSITIVE_KMS_KEY_ID is the key ARN:
# the sensitive bucket's policy compares the key named in a request as sent and does
# not resolve aliases.
locals {
  service_environment = {
    AWS_REGION            = local.region
    PRIMARY_BUCKET        = module.primary.id
    SENSITIVE_BUCKET      = module.sensitive.id
    BACKUP_BUCKET         = module.backup.id
    SENSITIVE_KMS_KEY_ID  = aws_kms_key.this["sensitive"].arn
    BACKUP_KMS_KEY_ID     = aws_kms_key.this["backup"].arn
    SECRETS_KMS_KEY_ID    = aws_kms_key.this["secrets"].arn
    USERS_TABLE           = aws_dynamodb_table.this["users"].name
    SESSIONS_TABLE        = aws_dynamodb_table.this["sessions"].name
    THROTTLE_TABLE        = aws_dynamodb_table.this["throttle"].name
    FILES_TABLE           = aws_dynamodb_table.this["files"].name
    JWT_SIGNING_KEY_PARAM = local.ssm_parameter_names.jwt_signing_key
    JWT_PUBLIC_KEYS_PARAM = local.ssm_parameter_names.jwt_public_keys
    BACKUP_EVENTS_QUEUE   = aws_sqs_queue.backup_events.name
    TRUSTED_PROXIES       = join(",", local.alb_subnet_cidrs)
    LOG_LEVEL             = var.log_level
    MAX_UPLOAD_BYTES      = tostring(var.max_upload_bytes)
    QUOTA_BYTES           = tostring(var.quota_bytes)
    BACKUP_RETENTION_DAYS = tostring(var.backup_retention_days)
  }
}
