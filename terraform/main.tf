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
  }
}
