################################################################################
# General
################################################################################

variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "us-east-1"
}

variable "environment" {
  description = "Name of the environment (e.g. prod, staging, ci). Tagged on every resource, and part of every name: <name_prefix>-<environment> (two environments live side by side in one account)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{0,9}$", var.environment))
    error_message = "environment must be 1-10 lowercase letters or digits, starting with a letter."
  }
}

variable "name_prefix" {
  description = "Prefix of every name: resources are named <name_prefix>-<environment>-..., SSM parameters /<name_prefix>-<environment>/..."
  type        = string
  default     = "scs"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,9}$", var.name_prefix))
    error_message = "name_prefix must be 2-10 lowercase letters, digits or hyphens, starting with a letter."
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
  description = "Alias of the customer managed key that encrypts the sensitive bucket. Null (the default) derives alias/<name>-sensitive, where <name> is <name_prefix>-<environment>."
  type        = string
  default     = null

  validation {
    condition     = var.sensitive_kms_key_alias == null || (can(regex("^alias/[a-zA-Z0-9/_-]+$", coalesce(var.sensitive_kms_key_alias, "alias/x"))) && !startswith(coalesce(var.sensitive_kms_key_alias, "alias/x"), "alias/aws/"))
    error_message = "The alias must start with \"alias/\" (not \"alias/aws/\") and contain only letters, digits, /, _ and -."
  }
}

variable "backup_kms_key_alias" {
  description = "Alias of the customer managed key that encrypts the backup bucket. Null (the default) derives alias/<name>-backup, where <name> is <name_prefix>-<environment>."
  type        = string
  default     = null

  validation {
    condition     = var.backup_kms_key_alias == null || (can(regex("^alias/[a-zA-Z0-9/_-]+$", coalesce(var.backup_kms_key_alias, "alias/x"))) && !startswith(coalesce(var.backup_kms_key_alias, "alias/x"), "alias/aws/"))
    error_message = "The alias must start with \"alias/\" (not \"alias/aws/\") and contain only letters, digits, /, _ and -."
  }
}

variable "secrets_kms_key_alias" {
  description = "Alias of the customer managed key for the application's SSM SecureString parameters (the JWT signing key). Null (the default) derives alias/<name>-secrets, where <name> is <name_prefix>-<environment>."
  type        = string
  default     = null

  validation {
    condition     = var.secrets_kms_key_alias == null || (can(regex("^alias/[a-zA-Z0-9/_-]+$", coalesce(var.secrets_kms_key_alias, "alias/x"))) && !startswith(coalesce(var.secrets_kms_key_alias, "alias/x"), "alias/aws/"))
    error_message = "The alias must start with \"alias/\" (not \"alias/aws/\") and contain only letters, digits, /, _ and -."
  }
}

variable "observability_kms_key_alias" {
  description = "Alias of the customer managed key that encrypts the CloudWatch log groups and the alarm SNS topic. Null (the default) derives alias/<name>-observability, where <name> is <name_prefix>-<environment>."
  type        = string
  default     = null

  validation {
    condition     = var.observability_kms_key_alias == null || (can(regex("^alias/[a-zA-Z0-9/_-]+$", coalesce(var.observability_kms_key_alias, "alias/x"))) && !startswith(coalesce(var.observability_kms_key_alias, "alias/x"), "alias/aws/"))
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
  description = "Name of the bucket uploads land in (PRIMARY_BUCKET). Bucket names are global: set your own in real AWS. Null (the default) derives <name>-primary-<account id>, where <name> is <name_prefix>-<environment>."
  type        = string
  default     = null
}

variable "sensitive_bucket_name" {
  description = "Name of the SSE-KMS bucket that objects tagged sensitive=true are moved to (SENSITIVE_BUCKET). Null (the default) derives <name>-sensitive-<account id>, where <name> is <name_prefix>-<environment>."
  type        = string
  default     = null
}

variable "backup_bucket_name" {
  description = "Name of the bucket that holds a KMS-encrypted copy of every stored file (BACKUP_BUCKET). Null (the default) derives <name>-backup-<account id>, where <name> is <name_prefix>-<environment>."
  type        = string
  default     = null
}

variable "access_log_bucket_name" {
  description = "Name of the bucket that receives the S3 server access logs of the primary, sensitive and backup buckets. Null (the default) derives <name>-access-logs-<account id>, where <name> is <name_prefix>-<environment>."
  type        = string
  default     = null
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

variable "max_upload_bytes" {
  description = "Largest file one streamed upload may carry, in bytes (MAX_UPLOAD_BYTES of the upload service; larger files are resumable uploads)."
  type        = number
  default     = 104857600

  validation {
    condition     = var.max_upload_bytes >= 1 && var.max_upload_bytes <= 5368709120
    error_message = "max_upload_bytes must be between 1 and 5368709120 (5 GiB): larger files are resumable uploads, whose copies S3 can verify."
  }
}

variable "quota_bytes" {
  description = "Bytes each user may store in all (QUOTA_BYTES of the upload service)."
  type        = number
  default     = 1073741824

  validation {
    condition     = var.quota_bytes >= 1
    error_message = "quota_bytes must be at least 1."
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
  description = "Name of the users table (hash key username). Null (the default) derives <name>-users, where <name> is <name_prefix>-<environment>."
  type        = string
  default     = null
}

variable "sessions_table_name" {
  description = "Name of the refresh-token sessions table (hash key pk, TTL attribute expiresAt). Null (the default) derives <name>-sessions, where <name> is <name_prefix>-<environment>."
  type        = string
  default     = null
}

variable "throttle_table_name" {
  description = "Name of the login-throttle table shared by all auth instances (hash key pk, TTL attribute expiresAt). Null (the default) derives <name>-throttle, where <name> is <name_prefix>-<environment>."
  type        = string
  default     = null
}

variable "files_table_name" {
  description = "Name of the file metadata table (hash key userId, range key fileId). Null (the default) derives <name>-files, where <name> is <name_prefix>-<environment>."
  type        = string
  default     = null
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

################################################################################
# Network
################################################################################

variable "vpc_cidr" {
  description = "IPv4 range of the VPC this module creates (ignored with existing_vpc). Split into one public and one private /20-sized part per availability zone."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && tonumber(split("/", var.vpc_cidr)[1]) <= 20
    error_message = "vpc_cidr must be an IPv4 CIDR block of /20 or larger."
  }
}

variable "availability_zone_count" {
  description = "Number of availability zones the subnets, the load balancer and the instances span."
  type        = number
  default     = 2

  validation {
    condition     = var.availability_zone_count >= 2 && var.availability_zone_count <= 4
    error_message = "availability_zone_count must be between 2 and 4 (an ALB needs two zones)."
  }
}

variable "existing_vpc" {
  description = "An existing VPC to deploy into instead of creating one: its id, the public subnets (load balancer) with their CIDR blocks (trusted proxies), and the private subnets (instances, without public addresses). Null creates a VPC."
  type = object({
    vpc_id              = string
    public_subnet_ids   = list(string)
    public_subnet_cidrs = list(string)
    private_subnet_ids  = list(string)
  })
  default = null
}

variable "create_vpc_endpoints" {
  description = "Whether to create the VPC endpoints the instances reach AWS through (S3 and DynamoDB gateways; SSM, KMS, ECR, logs and SQS interfaces). Set false only for an existing VPC that already has them."
  type        = bool
  default     = true
}

################################################################################
# Load balancer and WAF
################################################################################

variable "certificate_arn" {
  description = "ARN of the ACM certificate of the HTTPS listener (issued, in this region), e.g. for files.example.com."
  type        = string

  validation {
    condition     = can(regex("^arn:[a-z-]+:acm:[a-z0-9-]+:[0-9]{12}:certificate/.+$", var.certificate_arn))
    error_message = "certificate_arn must be an ACM certificate ARN."
  }
}

variable "site_origin" {
  description = "Origin of the site (scheme, host and port as the browser sends it in Origin, e.g. https://files.example.com): the only origin the primary bucket's CORS rule admits for direct uploads."
  type        = string

  validation {
    condition     = can(regex("^https?://[a-z0-9.-]+(:[0-9]+)?$", var.site_origin))
    error_message = "site_origin must be an origin such as https://files.example.com (no path, no trailing slash)."
  }
}

variable "alb_ssl_policy" {
  description = "TLS policy of the HTTPS listener: TLS 1.2 or newer only."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"

  validation {
    condition     = contains(["ELBSecurityPolicy-TLS13-1-2-2021-06", "ELBSecurityPolicy-TLS13-1-2-Res-2021-06", "ELBSecurityPolicy-TLS13-1-3-2021-06", "ELBSecurityPolicy-TLS-1-2-2017-01", "ELBSecurityPolicy-FS-1-2-Res-2020-10"], var.alb_ssl_policy)
    error_message = "alb_ssl_policy must be one of the TLS 1.2+ policies listed in variables.tf."
  }
}

variable "alb_desync_mitigation_mode" {
  description = "HTTP desync mitigation of the load balancer: defensive or strictest."
  type        = string
  default     = "defensive"

  validation {
    condition     = contains(["defensive", "strictest"], var.alb_desync_mitigation_mode)
    error_message = "alb_desync_mitigation_mode must be defensive or strictest."
  }
}

variable "alb_deletion_protection" {
  description = "Whether the load balancer is protected against deletion. Set false only for throwaway environments."
  type        = bool
  default     = true
}

variable "alb_idle_timeout_seconds" {
  description = "Seconds the load balancer keeps an idle connection open. Must stay below the services' keep-alive timeout (65 s)."
  type        = number
  default     = 60

  validation {
    condition     = var.alb_idle_timeout_seconds >= 1 && var.alb_idle_timeout_seconds < 65
    error_message = "alb_idle_timeout_seconds must be between 1 and 64."
  }
}

variable "deregistration_delay_seconds" {
  description = "Seconds a target that leaves (scale-in, rolling deploy) keeps serving its in-flight requests: long enough for a large upload to finish."
  type        = number
  default     = 600

  validation {
    condition     = var.deregistration_delay_seconds >= 0 && var.deregistration_delay_seconds <= 3600
    error_message = "deregistration_delay_seconds must be between 0 and 3600."
  }
}

variable "waf_rate_limit_per_5_minutes" {
  description = "Requests one client address may send in any 5 minutes before the WAF blocks it."
  type        = number
  default     = 2000

  validation {
    condition     = var.waf_rate_limit_per_5_minutes >= 100
    error_message = "waf_rate_limit_per_5_minutes must be at least 100 (the WAF minimum)."
  }
}

################################################################################
# Compute and images
################################################################################

variable "image_tag" {
  description = "Tag of the service images in ECR to run (the CI pipeline passes the commit SHA). Tags are immutable: a new tag rolls out a new launch template version."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag))
    error_message = "image_tag must be a valid image tag (letters, digits, _ . -; at most 128)."
  }
}

variable "ecr_repository_prefix" {
  description = "ECR repositories are <prefix>/auth, <prefix>/upload and <prefix>/backup-sync. Null (the default) derives <name>, where <name> is <name_prefix>-<environment>."
  type        = string
  default     = null
}

variable "ecr_images_to_keep" {
  description = "Number of most recent images each ECR repository keeps."
  type        = number
  default     = 30
}

variable "ecr_force_delete" {
  description = "Whether `terraform destroy` may delete ECR repositories that still hold images. Keep false outside throwaway environments."
  type        = bool
  default     = false
}

variable "ami_id" {
  description = "AMI of the service instances, pinned (Amazon Linux 2023; a change rolls out through the instance refresh). Null takes the current AMI of ami_ssm_parameter at each apply."
  type        = string
  default     = null

  validation {
    condition     = var.ami_id == null || can(regex("^ami-[0-9a-f]{8,17}$", coalesce(var.ami_id, "ami-00000000")))
    error_message = "ami_id must be null or an AMI id (ami-...)."
  }
}

variable "ami_ssm_parameter" {
  description = "Public SSM parameter that names the instances' AMI. Null (the default) takes Amazon Linux 2023 for var.architecture."
  type        = string
  default     = null
}

variable "architecture" {
  description = "CPU architecture of the service instances: x86_64 or arm64. The AMI follows it, and the pipeline builds the images for it (output image_platform); instance_type must be of the same architecture (t3 for x86_64, t4g for arm64)."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "instance_type" {
  description = "EC2 instance type of the service instances (each runs one service)."
  type        = string
  default     = "t3.small"
}

variable "root_volume_size_gib" {
  description = "Size of each instance's encrypted root volume, in GiB."
  type        = number
  default     = 20
}

variable "asg_min_size" {
  description = "Fewest instances of each service (at least one per availability zone for high availability)."
  type        = number
  default     = 2
}

variable "asg_max_size" {
  description = "Most instances of each service its CPU target tracking may scale out to."
  type        = number
  default     = 6

  validation {
    condition     = var.asg_max_size >= 1
    error_message = "asg_max_size must be at least 1."
  }
}

variable "cpu_target_percent" {
  description = "Average CPU utilisation, in percent, that each service's target tracking policy keeps its group at."
  type        = number
  default     = 30

  validation {
    condition     = var.cpu_target_percent > 0 && var.cpu_target_percent <= 100
    error_message = "cpu_target_percent must be between 1 and 100."
  }
}

variable "health_check_grace_period_seconds" {
  description = "Seconds a new instance gets to install Docker and start the containers before health checks count (also the instance warm-up)."
  type        = number
  default     = 300
}

variable "log_level" {
  description = "pino log level of the services and the Lambda (LOG_LEVEL)."
  type        = string
  default     = "info"

  validation {
    condition     = contains(["fatal", "error", "warn", "info", "debug", "trace"], var.log_level)
    error_message = "log_level must be one of fatal, error, warn, info, debug, trace."
  }
}

################################################################################
# Lambda and events
################################################################################

variable "lambda_zip_path" {
  description = "Path of the sensitive-mover deployment package: the zip that `npm run bundle -w @scs/sensitive-mover` writes (services/sensitive-mover/dist/lambda.zip, with index.js inside)."
  type        = string

  validation {
    condition     = endswith(var.lambda_zip_path, ".zip")
    error_message = "lambda_zip_path must name a .zip file."
  }
}

variable "lambda_function_name" {
  description = "Name of the sensitive-mover Lambda function. Null (the default) derives <name>-sensitive-mover, where <name> is <name_prefix>-<environment>."
  type        = string
  default     = null
}

variable "lambda_memory_mib" {
  description = "Memory of the sensitive-mover, in MiB (CPU grows with it)."
  type        = number
  default     = 512
}

variable "lambda_timeout_seconds" {
  description = "Longest a single sensitive-mover invocation may run, in seconds (a copy of the largest file must fit)."
  type        = number
  default     = 300

  validation {
    condition     = var.lambda_timeout_seconds >= 1 && var.lambda_timeout_seconds <= 900
    error_message = "lambda_timeout_seconds must be between 1 and 900."
  }
}

variable "lambda_reserved_concurrency" {
  description = "Concurrent executions reserved for (and capping) the sensitive-mover. Null (the default) reserves none: a new account's concurrency quota may leave too little unreserved to reserve any."
  type        = number
  default     = null

  validation {
    condition     = var.lambda_reserved_concurrency == null || try(var.lambda_reserved_concurrency >= 1, false)
    error_message = "lambda_reserved_concurrency must be null or at least 1."
  }
}

variable "sensitive_mover_failures_queue_name" {
  description = "SQS queue that receives the events the sensitive-mover failed to process after every retry (its on-failure destination). Null (the default) derives <name>-object-events-dlq, where <name> is <name_prefix>-<environment>."
  type        = string
  default     = null
}

variable "backup_events_queue_name" {
  description = "SQS queue of the object events backup-sync consumes (BACKUP_EVENTS_QUEUE); its dead-letter queue is <name>-dlq. Null (the default) derives <name>-backup-events, where <name> is <name_prefix>-<environment>."
  type        = string
  default     = null
}

################################################################################
# Logs and alarms
################################################################################

variable "log_retention_days" {
  description = "Days the CloudWatch log groups (services, Lambda, WAF) keep their events."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs supports (e.g. 30, 90, 365)."
  }
}

variable "alarm_emails" {
  description = "Addresses subscribed to the alarm topic (each must confirm by mail). Other subscribers can be added to the topic outside Terraform."
  type        = list(string)
  default     = []
}

variable "alarm_5xx_per_5_minutes" {
  description = "5xx answers (load balancer or targets) in 5 minutes above which an alarm fires."
  type        = number
  default     = 10
}

variable "backup_lag_alarm_seconds" {
  description = "Age in seconds of the oldest backup event above which the backup-lag alarm fires."
  type        = number
  default     = 600
}
