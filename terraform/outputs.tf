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
  description = "Names of the Auto Scaling groups to refresh after a deploy, by service (one group per service)."
  value       = { for name, group in aws_autoscaling_group.service : name => group.name }
}

output "launch_template_ids" {
  description = "Ids of the services' launch templates, by service."
  value       = { for name, template in aws_launch_template.service : name => template.id }
}

output "ecr_repository_urls" {
  description = "ECR repository URLs by service (push <url>:<image_tag>)."
  value       = { for name, repository in aws_ecr_repository.this : name => repository.repository_url }
}

output "service_role_arns" {
  description = "ARNs of the services' IAM roles (each service's instances run under their own), by service."
  value       = { for name, role in aws_iam_role.service : name => role.arn }
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

################################################################################
# Evidence
################################################################################

output "security_controls" {
  description = "The applied settings behind the security checklist's infrastructure controls (IN-01 .. IN-13): buckets, keys, launch template, load balancer and WAF, security group rules, Lambda, SSM, IAM policies. Evidence for audits; tests/controls.tftest.hcl checks it."
  value = {
    buckets = {
      for role, bucket in { primary = module.primary, sensitive = module.sensitive, backup = module.backup, access_logs = module.access_logs } : role => {
        arn                         = bucket.arn
        public_access_block         = bucket.public_access_block
        object_ownership            = bucket.object_ownership
        encryption                  = bucket.encryption
        policy                      = jsondecode(bucket.policy)
        versioning_status           = bucket.versioning_status
        access_log_target_bucket    = bucket.access_log_target_bucket
        lifecycle                   = bucket.lifecycle
        object_lock                 = bucket.object_lock
        cors_rules                  = bucket.cors_rules
      }
    }

    kms_keys = {
      for role, key in aws_kms_key.this : role => {
        arn                     = key.arn
        enable_key_rotation     = key.enable_key_rotation
        deletion_window_in_days = key.deletion_window_in_days
        policy                  = jsondecode(key.policy)
      }
    }

    launch_templates = {
      for name, template in aws_launch_template.service : name => {
        metadata_options      = one(template.metadata_options)
        network_interfaces    = template.network_interfaces
        block_device_mappings = template.block_device_mappings
        user_data             = base64decode(template.user_data)
        instance_profile_arn  = one(template.iam_instance_profile).arn
      }
    }

    auto_scaling_groups = {
      for name, group in aws_autoscaling_group.service : name => {
        target_group_arns    = group.target_group_arns
        launch_template_id   = one(group.launch_template).id
        cpu_target           = one(aws_autoscaling_policy.cpu[name].target_tracking_configuration).target_value
        cpu_metric           = one(one(aws_autoscaling_policy.cpu[name].target_tracking_configuration).predefined_metric_specification).predefined_metric_type
        target_group_for     = aws_lb_target_group.this[name].arn
        instance_profile_arn = aws_iam_instance_profile.service[name].arn
        role_arn             = aws_iam_role.service[name].arn
      }
    }

    load_balancer = {
      arn                        = aws_lb.this.arn
      internal                   = aws_lb.this.internal
      drop_invalid_header_fields = aws_lb.this.drop_invalid_header_fields
      desync_mitigation_mode     = aws_lb.this.desync_mitigation_mode
      enable_deletion_protection = aws_lb.this.enable_deletion_protection
      access_logs                = one(aws_lb.this.access_logs)
      http_default_action        = one(aws_lb_listener.http.default_action)
      https_protocol             = aws_lb_listener.https.protocol
      https_ssl_policy           = aws_lb_listener.https.ssl_policy
      blocked_paths = {
        patterns       = flatten([for condition in aws_lb_listener_rule.blocked.condition : [for pattern in condition.path_pattern : pattern.values]])
        fixed_response = one(one(aws_lb_listener_rule.blocked.action).fixed_response)
      }
      web_acl_association = aws_wafv2_web_acl_association.this.resource_arn
      web_acl_rules = [
        for rule in aws_wafv2_web_acl.this.rule : {
          name       = rule.name
          rate_based = length(one(rule.statement).rate_based_statement) > 0
          managed    = [for group in one(rule.statement).managed_rule_group_statement : group.name]
          count_only = flatten([
            for group in one(rule.statement).managed_rule_group_statement : [
              for override in group.rule_action_override : override.name if length(one(override.action_to_use).count) > 0
            ]
          ])
          scope_down = flatten([
            for group in one(rule.statement).managed_rule_group_statement : [
              for scope in group.scope_down_statement : length(scope.byte_match_statement) > 0
              ? "upload-routes:${one(scope.byte_match_statement).search_string}"
              : "off-upload-routes:${one(one(one(scope.not_statement).statement).byte_match_statement).search_string}"
            ]
          ])
        }
      ]
      waf_body_rules = { for name, group in local.waf_managed_rule_groups : name => group.body_rules }
    }

    security_group_rules = {
      for address, rule in merge(
        { for key, rule in aws_security_group_rule.alb_from_internet : "alb_from_internet.${key}" => rule },
        { for key, rule in aws_security_group_rule.alb_to_instances : "alb_to_instances.${key}" => rule },
        { for key, rule in aws_security_group_rule.instances_from_alb : "instances_from_alb.${key}" => rule },
        {
          "instances_to_endpoints"         = aws_security_group_rule.instances_to_endpoints
          "instances_to_gateway_endpoints" = aws_security_group_rule.instances_to_gateway_endpoints
          "endpoints_from_instances"       = aws_security_group_rule.endpoints_from_instances
        },
        ) : address => {
        security_group = { (aws_security_group.alb.id) = "alb", (aws_security_group.instances.id) = "instances", (aws_security_group.endpoints.id) = "endpoints" }[rule.security_group_id]
        type           = rule.type
        from_port      = rule.from_port
        to_port        = rule.to_port
        cidr_blocks    = coalesce(rule.cidr_blocks, [])
        source_group   = rule.source_security_group_id == null ? null : { (aws_security_group.alb.id) = "alb", (aws_security_group.instances.id) = "instances", (aws_security_group.endpoints.id) = "endpoints" }[rule.source_security_group_id]
      }
    }
    default_security_group_rules = local.create_vpc ? length(aws_default_security_group.this[0].ingress) + length(aws_default_security_group.this[0].egress) : null

    vpc_flow_log = {
      vpc_id          = aws_flow_log.this.vpc_id
      traffic_type    = aws_flow_log.this.traffic_type
      log_destination = aws_flow_log.this.log_destination
    }
    vpc_id = local.vpc_id

    lambda = {
      runtime                        = aws_lambda_function.sensitive_mover.runtime
      reserved_concurrent_executions = aws_lambda_function.sensitive_mover.reserved_concurrent_executions
      tracing_mode                   = one(aws_lambda_function.sensitive_mover.tracing_config).mode
      environment_names              = keys(one(aws_lambda_function.sensitive_mover.environment).variables)
      on_failure_destination         = one(one(aws_lambda_function_event_invoke_config.sensitive_mover.destination_config).on_failure).destination
      on_failure_queue_arn           = aws_sqs_queue.sensitive_mover_failures.arn
      permission = {
        principal      = aws_lambda_permission.primary_bucket.principal
        source_arn     = aws_lambda_permission.primary_bucket.source_arn
        source_account = aws_lambda_permission.primary_bucket.source_account
      }
    }

    ssm_parameters = {
      service_environment = {
        name   = aws_ssm_parameter.service_environment.name
        type   = aws_ssm_parameter.service_environment.type
        key_id = aws_ssm_parameter.service_environment.key_id
      }
    }
    ssm_parameters_written_by_keys_rotate = [local.ssm_parameter_names.jwt_signing_key, local.ssm_parameter_names.jwt_public_keys]

    iam_policies = merge(
      { for key, policy in aws_iam_role_policy.service : key => jsondecode(policy.policy) },
      { "sensitive-mover/sensitive-mover" = jsondecode(aws_iam_role_policy.sensitive_mover.policy) },
    )
  }
}

output "iam_evaluation" {
  description = "Everything IAM weighs for a call of a service or the Lambda, as applied: each principal's role ARN and identity policies, and the resource policies (buckets, keys, queues) by resource ARN. The Terraform check evaluates the services' call inventories against it."
  value = {
    account_id = local.account_id
    region     = local.region
    principals = merge(
      {
        for name, role in aws_iam_role.service : name => {
          role_arn = role.arn
          policies = [for key, policy in aws_iam_role_policy.service : jsondecode(policy.policy) if startswith(key, "${name}/")]
        }
      },
      {
        "sensitive-mover" = {
          role_arn = aws_iam_role.sensitive_mover.arn
          policies = [jsondecode(aws_iam_role_policy.sensitive_mover.policy)]
        }
      },
    )
    resource_policies = merge(
      { for role, bucket in { primary = module.primary, sensitive = module.sensitive, backup = module.backup } : bucket.arn => jsondecode(bucket.policy) },
      { for role, key in aws_kms_key.this : key.arn => jsondecode(key.policy) },
      {
        (aws_sqs_queue.backup_events.arn)     = jsondecode(aws_sqs_queue_policy.backup_events.policy)
        (aws_sqs_queue.backup_events_dlq.arn) = jsondecode(aws_sqs_queue_policy.backup_events_dlq.policy)
      },
    )
    # The names the inventories' placeholders stand for.
    names = merge(local.service_environment, {
      SSM_SERVICE_ENVIRONMENT_PARAM  = aws_ssm_parameter.service_environment.name
      SENSITIVE_MOVER_FAILURES_QUEUE = aws_sqs_queue.sensitive_mover_failures.name
      SENSITIVE_MOVER_FUNCTION       = aws_lambda_function.sensitive_mover.function_name
    })
  }
}

################################################################################
# Pipeline
################################################################################

output "image_platform" {
  description = "The container image platform of the instances' architecture (linux/amd64 or linux/arm64): what the pipeline builds for."
  value       = var.architecture == "arm64" ? "linux/arm64" : "linux/amd64"
}

output "signing_key_settings" {
  description = "What `keys:rotate` needs for this environment's signing key: the two parameter names and the secrets key's alias (scripts/pipeline/bootstrap.sh writes the first key with them, right after the bootstrap apply)."
  value = {
    JWT_SIGNING_KEY_PARAM = local.ssm_parameter_names.jwt_signing_key
    JWT_PUBLIC_KEYS_PARAM = local.ssm_parameter_names.jwt_public_keys
    SECRETS_KMS_KEY_ID    = aws_kms_alias.this["secrets"].name
  }
}
