variable "bucket" {
  description = "Name of the bucket (globally unique in real AWS)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket))
    error_message = "The bucket name must be 3-63 characters of lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit."
  }
}

variable "force_destroy" {
  description = "Whether `terraform destroy` may delete the bucket while it still holds objects. Keep false for data buckets."
  type        = bool
  default     = false
}

variable "sse_algorithm" {
  description = "Default server-side encryption: \"aws:kms\" (SSE-KMS) or \"AES256\" (SSE-S3, only for buckets AWS services write to without KMS support, e.g. server access log targets)."
  type        = string
  default     = "aws:kms"

  validation {
    condition     = contains(["aws:kms", "AES256"], var.sse_algorithm)
    error_message = "sse_algorithm must be \"aws:kms\" or \"AES256\"."
  }
}

variable "kms_key_arn" {
  description = "ARN of the customer managed KMS key for SSE-KMS. Null uses the AWS managed key aws/s3. Ignored when sse_algorithm is AES256."
  type        = string
  default     = null
}

variable "enforce_encryption" {
  description = "Whether the bucket policy denies object writes that ask for any other encryption than the bucket's: another algorithm, or a KMS key other than kms_key_arn and additional_kms_key_arns."
  type        = bool
  default     = false
}

variable "additional_kms_key_arns" {
  description = "ARNs of further KMS keys that object writes may name (with enforce_encryption), besides kms_key_arn."
  type        = list(string)
  default     = []
}

variable "abort_incomplete_multipart_upload_days" {
  description = "Days after which incomplete multipart uploads are aborted and their parts deleted."
  type        = number
  default     = 1
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which noncurrent (overwritten or deleted) object versions are permanently deleted."
  type        = number

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1
    error_message = "noncurrent_version_expiration_days must be at least 1."
  }
}

variable "current_version_expiration_days" {
  description = "Days after which current object versions expire (become noncurrent). Null keeps current versions forever."
  type        = number
  default     = null
}

variable "prefix_expiration_days" {
  description = "Key prefixes whose current objects expire after the given number of days (they then become noncurrent and follow noncurrent_version_expiration_days)."
  type        = map(number)
  default     = {}
}

variable "access_logging" {
  description = "Where this bucket's S3 server access logs go: target bucket name and key prefix. Null disables access logging (only for the log bucket itself)."
  type = object({
    target_bucket = string
    target_prefix = string
  })
  default = null
}

variable "policy_documents" {
  description = "Additional IAM policy documents (JSON) merged into the bucket policy, e.g. a grant for the S3 logging service."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for the bucket, on top of the provider's default_tags."
  type        = map(string)
  default     = {}
}

variable "object_lock_retention_days" {
  description = "Days every new object version is retained under Object Lock (governance mode) before it can be deleted. Null: no Object Lock. Enabling it on an existing bucket replaces the bucket."
  type        = number
  default     = null

  validation {
    condition     = var.object_lock_retention_days == null || try(var.object_lock_retention_days >= 1, false)
    error_message = "object_lock_retention_days must be null or at least 1."
  }
}

variable "cors_rule" {
  description = "The one CORS rule of the bucket (origins, methods, request headers allowed, response headers exposed, preflight cache seconds). Null: no CORS configuration."
  type = object({
    allowed_origins = list(string)
    allowed_methods = list(string)
    allowed_headers = list(string)
    expose_headers  = list(string)
    max_age_seconds = number
  })
  default = null
}
