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
  description = "ARNs of the customer managed keys: sensitive, backup, secrets and observability."
  value       = { for key, kms_key in aws_kms_key.this : key => kms_key.arn }
}

output "kms_key_aliases" {
  description = "Aliases of the customer managed keys: sensitive, backup, secrets and observability."
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
  description = "Names of the SSM parameters the services use: jwt_signing_key (SecureString under the secrets CMK) and jwt_public_keys (String), both written by `npm run keys:rotate`, never by Terraform; service_environment (SecureString, the services' configuration, written by Terraform)."
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
  description = "Environment variables of the services on AWS (the product contract's names); the instances read the same values from the SSM parameter ssm_parameter_names.service_environment. SENSITIVE_KMS_KEY_ID is the key ARN: the sensitive bucket's policy compares the key named in a request as sent and does not resolve aliases."
  value       = local.service_environment
}

################################################################################
# Network, load balancer, compute
################################################################################

output "vpc_id" {
  description = "Id of the VPC the stack runs in."
  value       = local.vpc_id
}

output "public_subnet_ids" {
  description = "Ids of the public subnets (load balancer)."
  value       = local.public_subnet_ids
}

output "private_subnet_ids" {
  description = "Ids of the private subnets (service instances, no public addresses)."
  value       = local.private_subnet_ids
}

output "alb_dns_name" {
  description = "DNS name of the load balancer: point the certificate's domain at it (CNAME or Route 53 alias)."
  value       = aws_lb.this.dns_name
}

output "alb_zone_id" {
  description = "Hosted zone id of the load balancer, for a Route 53 alias record."
  value       = aws_lb.this.zone_id
}

output "target_group_arns" {
  description = "Target group ARNs by service: auth, upload and backup-sync."
  value       = { for name, group in aws_lb_target_group.this : name => group.arn }
}

output "web_acl_arn" {
  description = "ARN of the WAF web ACL associated with the load balancer."
  value       = aws_wafv2_web_acl.this.arn
}

output "asg_names" {
  description = "Names of the Auto Scaling groups to refresh after a deploy (one: every instance runs all three services)."
  value       = [aws_autoscaling_group.this.name]
}

output "launch_template_id" {
  description = "Id of the service instances' launch template."
  value       = aws_launch_template.this.id
}

output "ecr_repository_urls" {
  description = "ECR repository URLs by service (push <url>:<image_tag>)."
  value       = { for name, repository in aws_ecr_repository.this : name => repository.repository_url }
}

output "instance_role_arn" {
  description = "ARN of the service instances' IAM role."
  value       = aws_iam_role.instance.arn
}

################################################################################
# Lambda, events, alarms
################################################################################

output "sensitive_mover_function_name" {
  description = "Name of the sensitive-mover Lambda function."
  value       = aws_lambda_function.sensitive_mover.function_name
}

output "sensitive_mover_role_arn" {
  description = "ARN of the sensitive-mover's execution role."
  value       = aws_iam_role.sensitive_mover.arn
}

output "queue_urls" {
  description = "SQS queue URLs: backup_events (consumed by backup-sync), backup_events_dlq, sensitive_mover_failures (the Lambda's on-failure destination)."
  value = {
    backup_events            = aws_sqs_queue.backup_events.id
    backup_events_dlq        = aws_sqs_queue.backup_events_dlq.id
    sensitive_mover_failures = aws_sqs_queue.sensitive_mover_failures.id
  }
}

output "alarm_topic_arn" {
  description = "ARN of the SNS topic every alarm notifies; subscribe operators to it."
  value       = aws_sns_topic.alarms.arn
}
