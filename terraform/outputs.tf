################################################################################
# S3
################################################################################

output "bucket_names" {
  description = "Bucket names by role: primary, sensitive, backup and access_logs."
  value = {
    primary     = module.primary.id
    sensitive   = module.sensitive.id
    backup      = module.backup.id
    access_logs = module.access_logs.id
  }
}

output "bucket_arns" {
  description = "Bucket ARNs by role: primary, sensitive, backup and access_logs."
  value = {
    primary     = module.primary.arn
    sensitive   = module.sensitive.arn
    backup      = module.backup.arn
    access_logs = module.access_logs.arn
  }
}

################################################################################
# KMS
################################################################################

output "kms_key_arns" {
  description = "ARNs of the customer managed keys: sensitive, backup and secrets."
  value       = { for key, kms_key in aws_kms_key.this : key => kms_key.arn }
}

output "kms_key_aliases" {
  description = "Aliases of the customer managed keys: sensitive, backup and secrets."
  value       = { for key, alias in aws_kms_alias.this : key => alias.name }
}

################################################################################
# DynamoDB
################################################################################

output "dynamodb_table_names" {
  description = "Table names by role: users, sessions, throttle and files."
  value       = { for key, table in aws_dynamodb_table.this : key => table.name }
}

output "dynamodb_table_arns" {
  description = "Table ARNs by role: users, sessions, throttle and files."
  value       = { for key, table in aws_dynamodb_table.this : key => table.arn }
}

################################################################################
# SSM and IAM
################################################################################

output "ssm_parameter_names" {
  description = "Names of the SSM parameters the services use (created by `npm run keys:rotate`, not by Terraform): jwt_signing_key (SecureString under the secrets CMK) and jwt_public_keys (String)."
  value       = local.ssm_parameter_names
}

output "iam_policy_arns" {
  description = "Managed IAM policies to attach to the roles of later issues: jwt_signing_key_read (auth service), jwt_public_keys_read (token verifiers), jwt_key_rotation (operators running keys:rotate)."
  value = {
    jwt_signing_key_read = aws_iam_policy.jwt_signing_key_read.arn
    jwt_public_keys_read = aws_iam_policy.jwt_public_keys_read.arn
    jwt_key_rotation     = aws_iam_policy.jwt_key_rotation.arn
  }
}

################################################################################
# Service configuration
################################################################################

output "service_environment" {
  description = "Environment variables of the services (the product contract). SENSITIVE_KMS_KEY_ID is the key ARN: the sensitive bucket's policy compares the key named in a request as sent and does not resolve aliases."
  value = {
    AWS_REGION           = local.region
    PRIMARY_BUCKET       = module.primary.id
    SENSITIVE_BUCKET     = module.sensitive.id
    BACKUP_BUCKET        = module.backup.id
    SENSITIVE_KMS_KEY_ID = aws_kms_key.this["sensitive"].arn
  }
}
