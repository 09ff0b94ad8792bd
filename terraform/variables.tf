################################################################################
# General
################################################################################

variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "us-east-1"
}

variable "environment" {
  description = "Name of the environment (e.g. prod, staging, ci). Tagged on every resource."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of names that are not set by their own variable: SSM parameter paths (/<prefix>/...) and IAM policy names."
  type        = string
  default     = "scs"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name_prefix))
    error_message = "name_prefix must be 2-21 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "tags" {
  description = "Extra tags for every resource, merged into the provider's default_tags."
  type        = map(string)
  default     = {}
}

variable "local_endpoint" {
  description = "URL of an AWS emulator (e.g. http://127.0.0.1:4599 for moto) that receives every AWS API call. Null (the default) targets real AWS."
  type        = string
  default     = null

  validation {
    condition     = var.local_endpoint == null || can(regex("^https?://", var.local_endpoint))
    error_message = "local_endpoint must be null or an http(s):// URL."
  }
}

################################################################################
# KMS
################################################################################

variable "sensitive_kms_key_alias" {
  description = "Alias of the customer managed key that encrypts the sensitive bucket."
  type        = string
  default     = "alias/scs-sensitive"

  validation {
    condition     = can(regex("^alias/[a-zA-Z0-9/_-]+$", var.sensitive_kms_key_alias)) && !startswith(var.sensitive_kms_key_alias, "alias/aws/")
    error_message = "The alias must start with \"alias/\" (not \"alias/aws/\") and contain only letters, digits, /, _ and -."
  }
}

variable "backup_kms_key_alias" {
  description = "Alias of the customer managed key that encrypts the backup bucket."
  type        = string
  default     = "alias/scs-backup"

  validation {
    condition     = can(regex("^alias/[a-zA-Z0-9/_-]+$", var.backup_kms_key_alias)) && !startswith(var.backup_kms_key_alias, "alias/aws/")
    error_message = "The alias must start with \"alias/\" (not \"alias/aws/\") and contain only letters, digits, /, _ and -."
  }
}

variable "secrets_kms_key_alias" {
  description = "Alias of the customer managed key for the application's SSM SecureString parameters (the JWT signing key)."
  type        = string
  default     = "alias/scs-secrets"

  validation {
    condition     = can(regex("^alias/[a-zA-Z0-9/_-]+$", var.secrets_kms_key_alias)) && !startswith(var.secrets_kms_key_alias, "alias/aws/")
    error_message = "The alias must start with \"alias/\" (not \"alias/aws/\") and contain only letters, digits, /, _ and -."
  }
}

variable "kms_deletion_window_in_days" {
  description = "Waiting period, in days, before a scheduled KMS key deletion takes effect."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_in_days >= 7 && var.kms_deletion_window_in_days <= 30
    error_message = "kms_deletion_window_in_days must be between 7 and 30."
  }
}

################################################################################
# S3
################################################################################

variable "primary_bucket_name" {
  description = "Name of the bucket uploads land in (PRIMARY_BUCKET). Bucket names are global: set your own in real AWS."
  type        = string
  default     = "scs-primary"
}

variable "sensitive_bucket_name" {
  description = "Name of the SSE-KMS bucket that objects tagged sensitive=true are moved to (SENSITIVE_BUCKET)."
  type        = string
  default     = "scs-sensitive"
}

variable "backup_bucket_name" {
  description = "Name of the bucket that holds a KMS-encrypted copy of every stored file (BACKUP_BUCKET)."
  type        = string
  default     = "scs-backup"
}

variable "access_log_bucket_name" {
  description = "Name of the bucket that receives the S3 server access logs of the primary, sensitive and backup buckets."
  type        = string
  default     = "scs-access-logs"
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which overwritten or deleted object versions in the primary and sensitive buckets are permanently deleted."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1
    error_message = "noncurrent_version_expiration_days must be at least 1."
  }
}

variable "backup_retention_days" {
  description = "Days a backup copy is kept after it was deleted or replaced (BACKUP_RETENTION_DAYS of backup-sync)."
  type        = number
  default     = 30

  validation {
    condition     = var.backup_retention_days >= 1
    error_message = "backup_retention_days must be at least 1."
  }
}

variable "access_log_retention_days" {
  description = "Days S3 server access logs are kept."
  type        = number
  default     = 90

  validation {
    condition     = var.access_log_retention_days >= 1
    error_message = "access_log_retention_days must be at least 1."
  }
}

variable "force_destroy_buckets" {
  description = "Whether `terraform destroy` may delete buckets that still hold objects. Keep false outside throwaway environments."
  type        = bool
  default     = false
}

################################################################################
# DynamoDB
################################################################################

variable "users_table_name" {
  description = "Name of the users table (hash key username)."
  type        = string
  default     = "scs-users"
}

variable "sessions_table_name" {
  description = "Name of the refresh-token sessions table (hash key pk, TTL attribute expiresAt)."
  type        = string
  default     = "scs-sessions"
}

variable "throttle_table_name" {
  description = "Name of the login-throttle table shared by all auth instances (hash key pk, TTL attribute expiresAt)."
  type        = string
  default     = "scs-throttle"
}

variable "files_table_name" {
  description = "Name of the file metadata table (hash key userId, range key fileId)."
  type        = string
  default     = "scs-files"
}

variable "dynamodb_kms_key_arn" {
  description = "ARN of a customer managed KMS key for the tables' encryption at rest. Null uses the AWS managed key aws/dynamodb."
  type        = string
  default     = null
}

variable "dynamodb_deletion_protection" {
  description = "Whether the tables are protected against deletion. Set false only for throwaway environments (the check harness does, to destroy what it applied)."
  type        = bool
  default     = true
}
