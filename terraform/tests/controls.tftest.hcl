# The security checklist's infrastructure controls (IN-01 .. IN-13), one run block each,
# named after the control and the matching checkov rule.
#
# The first run applies the whole root module (to the AWS emulator in CI:
# scripts/bin/terraform-check.mjs passes local_endpoint, certificate_arn and
# lambda_zip_path). The control runs then check the settings as applied, from the root
# module's `security_controls` output, on a module without providers (tests/evidence),
# so each check costs no AWS call. The last run plans the root module again; the
# harness asserts that this plan changes nothing. `terraform test` destroys everything
# at the end.
#
#   terraform test -var local_endpoint=http://127.0.0.1:4566 \
#     -var certificate_arn=<ACM certificate ARN> -var lambda_zip_path=<zip>

variables {
  environment = "test"
  image_tag   = "test"
  site_origin = "https://files.example.test"

  # A throwaway environment: everything may be destroyed at the end.
  kms_deletion_window_in_days  = 7
  dynamodb_deletion_protection = false
  force_destroy_buckets        = true
  alb_deletion_protection      = false
  ecr_force_delete             = true
}

run "apply" {
  assert {
    condition     = length(output.asg_names) == 3 && output.alb_dns_name != ""
    error_message = "The whole root module applies: a load balancer and one Auto Scaling group per service exist."
  }

  assert {
    condition     = output.service_environment.MAX_UPLOAD_BYTES == "104857600" && output.service_environment.QUOTA_BYTES == "1073741824" && output.service_environment.BACKUP_RETENTION_DAYS == "30"
    error_message = "The size limit, the quota and the backup retention reach the services (max_upload_bytes, quota_bytes, backup_retention_days)."
  }
}

run "in_01_ckv_aws_53_to_56_ckv2_aws_65_public_access_blocked_acls_disabled" {
  command = plan

  module {
    source = "./tests/evidence"
  }

  assert {
    condition     = alltrue([for bucket in run.apply.security_controls.buckets : alltrue(values(bucket.public_access_block))])
    error_message = "IN-01 / CKV_AWS_53..CKV_AWS_56: every bucket blocks public ACLs and public policies."
  }

  assert {
    condition     = alltrue([for bucket in run.apply.security_controls.buckets : bucket.object_ownership == "BucketOwnerEnforced"])
    error_message = "IN-01 / CKV2_AWS_65: every bucket has ACLs disabled (BucketOwnerEnforced)."
  }
}

run "in_02_s3_5_tls_only_bucket_policies" {
  command = plan

  module {
    source = "./tests/evidence"
  }

  assert {
    condition = alltrue([
      for bucket in run.apply.security_controls.buckets : anytrue([
        for statement in bucket.policy.Statement :
        statement.Effect == "Deny" && statement.Principal == "*" && try(statement.Condition.Bool["aws:SecureTransport"], "") == "false"
      ])
    ])
    error_message = "IN-02 / Security Hub S3.5 (checkov has no rule on the policy's content): every bucket policy denies aws:SecureTransport = false."
  }
}

run "in_03_ckv_aws_145_ckv_aws_7_ckv_aws_33_sensitive_bucket_cmk" {
  command = plan

  module {
    source = "./tests/evidence"
  }

  assert {
    condition     = run.apply.security_controls.buckets.sensitive.encryption.sse_algorithm == "aws:kms" && run.apply.security_controls.buckets.sensitive.encryption.kms_master_key_id == run.apply.security_controls.kms_keys.sensitive.arn
    error_message = "IN-03 / CKV_AWS_145: the sensitive bucket defaults to SSE-KMS under its customer managed key."
  }

  assert {
    condition = anytrue([
      for statement in run.apply.security_controls.buckets.sensitive.policy.Statement :
      statement.Effect == "Deny" && statement.Action == "s3:PutObject" &&
      try(statement.Condition.StringNotEquals["s3:x-amz-server-side-encryption-aws-kms-key-id"], "") == run.apply.security_controls.kms_keys.sensitive.arn &&
      try(statement.Condition.Null["s3:x-amz-server-side-encryption-aws-kms-key-id"], "") == "false"
    ])
    error_message = "IN-03: the sensitive bucket's policy denies PutObject under any other key."
  }

  assert {
    condition     = alltrue([for key in run.apply.security_controls.kms_keys : key.enable_key_rotation && key.deletion_window_in_days >= 7])
    error_message = "IN-03 / CKV_AWS_7: every customer managed key rotates and has a deletion window of at least 7 days."
  }

  assert {
    condition = alltrue(flatten([
      for key in run.apply.security_controls.kms_keys : [
        for statement in key.policy.Statement : !contains(flatten([try(values(statement.Principal), [statement.Principal])]), "*")
      ]
    ]))
    error_message = "IN-03 / CKV_AWS_33: no key policy names a wildcard principal."
  }
}

run "in_03_primary_sse_s3_backup_two_keys_one_owner" {
  command = plan

  module {
    source = "./tests/evidence"
  }

  assert {
    condition     = run.apply.security_controls.buckets.primary.encryption.sse_algorithm == "AES256"
    error_message = "The primary bucket defaults to SSE-S3 (AES256), the setting the upload service sends."
  }

  assert {
    condition = anytrue([
      for statement in run.apply.security_controls.buckets.primary.policy.Statement :
      statement.Effect == "Deny" && try(statement.Condition.StringNotEquals["s3:x-amz-server-side-encryption"], "") == "AES256" &&
      try(statement.Condition.Null["s3:x-amz-server-side-encryption"], "") == "false"
    ])
    error_message = "The primary bucket's policy denies object writes that ask for anything but AES256."
  }

  assert {
    condition = alltrue(flatten([
      for bucket in run.apply.security_controls.buckets : [
        for statement in bucket.policy.Statement : !can(statement.Condition.StringNotEqualsIfExists) if statement.Effect == "Deny"
      ]
    ]))
    error_message = "IN-03: no encryption denial holds for a request without the header (StringNotEqualsIfExists would refuse UploadPart and UploadPartCopy, which send none)."
  }

  assert {
    condition = anytrue([
      for statement in run.apply.security_controls.buckets.backup.policy.Statement :
      statement.Effect == "Deny" &&
      toset(flatten([try(statement.Condition.StringNotEquals["s3:x-amz-server-side-encryption-aws-kms-key-id"], [])])) == toset([run.apply.security_controls.kms_keys.backup.arn, run.apply.security_controls.kms_keys.sensitive.arn])
    ])
    error_message = "The backup bucket's policy accepts exactly the backup and the sensitive keys."
  }
}

run "in_04_ckv_aws_21_versioning" {
  command = plan

  module {
    source = "./tests/evidence"
  }

  assert {
    condition     = alltrue([for bucket in run.apply.security_controls.buckets : bucket.versioning_status == "Enabled"])
    error_message = "IN-04 / CKV_AWS_21: versioning is enabled on every bucket."
  }
}

run "in_05_ckv_aws_18_access_logs" {
  command = plan

  module {
    source = "./tests/evidence"
  }

  assert {
    condition     = alltrue([for role in ["primary", "sensitive", "backup"] : run.apply.security_controls.buckets[role].access_log_target_bucket == split(":::", run.apply.security_controls.buckets.access_logs.arn)[1]])
    error_message = "IN-05 / CKV_AWS_18: the primary, sensitive and backup buckets log their accesses to the log bucket."
  }
}

run "in_06_ckv_aws_300_ckv2_aws_61_lifecycle" {
  command = plan

  module {
    source = "./tests/evidence"
  }

  assert {
    condition = alltrue([
      for bucket in run.apply.security_controls.buckets : contains(bucket.lifecycle.abort_incomplete_multipart_upload_days, 1) && length(bucket.lifecycle.noncurrent_version_expiration_days) > 0
    ])
    error_message = "IN-06 / CKV_AWS_300, CKV2_AWS_61: every bucket aborts incomplete multipart uploads after 1 day and expires noncurrent versions."
  }

  assert {
    condition     = contains(run.apply.security_controls.buckets.backup.lifecycle.noncurrent_version_expiration_days, 30)
    error_message = "IN-06: backup copies of deleted files are kept backup_retention_days (30)."
  }
}

run "in_08_ckv_aws_79_ckv_aws_88_ckv_aws_8_ckv_aws_46_launch_template" {
  command = plan

  module {
    source = "./tests/evidence"
  }

  assert {
    condition     = alltrue([for template in run.apply.security_controls.launch_templates : template.metadata_options.http_tokens == "required" && template.metadata_options.http_put_response_hop_limit == 1])
    error_message = "IN-08 / CKV_AWS_79: every launch template requires IMDSv2 with a hop limit of 1."
  }

  assert {
    condition     = alltrue(flatten([for template in run.apply.security_controls.launch_templates : [for interface in template.network_interfaces : interface.associate_public_ip_address == "false"]]))
    error_message = "IN-08 / CKV_AWS_88: instances get no public address."
  }

  assert {
    condition     = alltrue(flatten([for template in run.apply.security_controls.launch_templates : [for device in template.block_device_mappings : device.ebs[0].encrypted == "true"]]))
    error_message = "IN-08 / CKV_AWS_8: every EBS volume is encrypted."
  }

  assert {
    condition     = alltrue([for template in run.apply.security_controls.launch_templates : !can(regex("(?i)(PRIVATE KEY|secret_access_key|password=)", template.user_data))])
    error_message = "IN-08 / CKV_AWS_46: the user data holds no secret."
  }

  assert {
    condition     = alltrue([for template in run.apply.security_controls.launch_templates : strcontains(template.user_data, "--log-opt mode=non-blocking")])
    error_message = "The awslogs driver never blocks a service when CloudWatch stalls (mode=non-blocking)."
  }
}

run "in_09_ckv_aws_2_103_131_328_91_150_ckv2_aws_20_28_load_balancer" {
  command = plan

  module {
    source = "./tests/evidence"
  }

  assert {
    condition     = run.apply.security_controls.load_balancer.http_default_action.type == "redirect" && run.apply.security_controls.load_balancer.http_default_action.redirect[0].protocol == "HTTPS"
    error_message = "IN-09 / CKV2_AWS_20: HTTP redirects to HTTPS."
  }

  assert {
    condition     = run.apply.security_controls.load_balancer.https_protocol == "HTTPS" && can(regex("^ELBSecurityPolicy-(TLS13-1-[23]|TLS-1-2|FS-1-2)", run.apply.security_controls.load_balancer.https_ssl_policy))
    error_message = "IN-09 / CKV_AWS_2, CKV_AWS_103: the HTTPS listener allows TLS 1.2 or newer only."
  }

  assert {
    condition     = run.apply.security_controls.load_balancer.drop_invalid_header_fields && contains(["defensive", "strictest"], run.apply.security_controls.load_balancer.desync_mitigation_mode)
    error_message = "IN-09 / CKV_AWS_131, CKV_AWS_328: invalid header fields are dropped; desync mitigation is defensive or strictest."
  }

  assert {
    condition     = run.apply.security_controls.load_balancer.access_logs.enabled && run.apply.security_controls.load_balancer.access_logs.bucket == split(":::", run.apply.security_controls.buckets.access_logs.arn)[1]
    error_message = "IN-09 / CKV_AWS_91: the load balancer writes access logs."
  }

  assert {
    condition = anytrue([
      for statement in run.apply.security_controls.buckets.access_logs.policy.Statement :
      statement.Effect == "Allow" && try(statement.Principal.Service, "") == "logdelivery.elasticloadbalancing.amazonaws.com"
    ])
    error_message = "IN-09: the log bucket admits the ELB log delivery service principal (the only way in regions opened after August 2022)."
  }

  assert {
    condition     = run.apply.security_controls.load_balancer.enable_deletion_protection == false
    error_message = "IN-09 / CKV_AWS_150: deletion protection follows alb_deletion_protection (on by default, off only in this throwaway test)."
  }

  assert {
    condition     = run.apply.security_controls.load_balancer.web_acl_association == run.apply.security_controls.load_balancer.arn && anytrue([for rule in run.apply.security_controls.load_balancer.web_acl_rules : rule.rate_based]) && length(flatten([for rule in run.apply.security_controls.load_balancer.web_acl_rules : rule.managed])) >= 2
    error_message = "IN-09 / CKV2_AWS_28: a WAF web ACL with a rate-based rule and AWS managed rule groups protects the load balancer."
  }

  assert {
    condition     = run.apply.security_controls.load_balancer.blocked_paths.fixed_response.status_code == "404" && contains(run.apply.security_controls.load_balancer.blocked_paths.patterns, "/metrics")
    error_message = "/metrics is answered 404 by the load balancer, never forwarded."
  }
}

run "in_10_ckv_aws_24_ckv_aws_260_ckv2_aws_12_security_groups" {
  command = plan

  module {
    source = "./tests/evidence"
  }

  assert {
    condition = alltrue([
      for rule in values(run.apply.security_controls.security_group_rules) :
      !contains(rule.cidr_blocks, "0.0.0.0/0") || (rule.security_group == "alb" && rule.type == "ingress" && contains([80, 443], rule.from_port) && rule.from_port == rule.to_port)
    ])
    error_message = "IN-10 / CKV_AWS_260: 0.0.0.0/0 only on the load balancer's 80 and 443."
  }

  assert {
    condition = alltrue([
      for rule in values(run.apply.security_controls.security_group_rules) : rule.source_group == "alb" && length(rule.cidr_blocks) == 0 if rule.security_group == "instances" && rule.type == "ingress"
    ])
    error_message = "IN-10: the instances accept traffic only from the load balancer's security group."
  }

  assert {
    condition     = alltrue([for rule in values(run.apply.security_controls.security_group_rules) : !(rule.from_port <= 22 && rule.to_port >= 22) if rule.type == "ingress"])
    error_message = "IN-10 / CKV_AWS_24: no security group opens SSH."
  }

  assert {
    condition     = run.apply.security_controls.default_security_group_rules == 0
    error_message = "IN-10 / CKV2_AWS_12: the VPC's default security group allows nothing."
  }

  assert {
    condition     = run.apply.security_controls.vpc_flow_log.vpc_id == run.apply.security_controls.vpc_id && run.apply.security_controls.vpc_flow_log.traffic_type == "ALL"
    error_message = "IN-10 / CKV2_AWS_11: the VPC logs every flow, accepted and rejected."
  }
}

run "in_11_ckv_aws_364_363_116_115_50_45_lambda" {
  command = plan

  module {
    source = "./tests/evidence"
  }

  assert {
    condition     = run.apply.security_controls.lambda.permission.principal == "s3.amazonaws.com" && run.apply.security_controls.lambda.permission.source_arn == run.apply.security_controls.buckets.primary.arn && can(regex("^[0-9]{12}$", run.apply.security_controls.lambda.permission.source_account))
    error_message = "IN-11 / CKV_AWS_364: S3 may invoke the function only for the primary bucket of this account."
  }

  assert {
    condition     = contains(["nodejs20.x", "nodejs22.x"], run.apply.security_controls.lambda.runtime)
    error_message = "IN-11 / CKV_AWS_363: the runtime is supported."
  }

  assert {
    condition     = run.apply.security_controls.lambda.on_failure_destination == run.apply.security_controls.lambda.on_failure_queue_arn
    error_message = "IN-11 / CKV_AWS_116: events that fail every retry go to an on-failure destination (SQS)."
  }

  assert {
    condition     = run.apply.security_controls.lambda.reserved_concurrent_executions == -1
    error_message = "The function reserves no concurrency by default (lambda_reserved_concurrency null: a new account's quota may not allow any); CKV_AWS_115 is met by setting it."
  }

  assert {
    condition     = run.apply.security_controls.lambda.tracing_mode == "Active"
    error_message = "IN-11 / CKV_AWS_50: X-Ray tracing is active."
  }

  assert {
    condition     = alltrue([for name in run.apply.security_controls.lambda.environment_names : !can(regex("(?i)(SECRET|PASSWORD|PRIVATE|TOKEN)", name))])
    error_message = "IN-11 / CKV_AWS_45: no secret in the function's environment."
  }
}

run "in_12_ckv2_aws_34_ckv_aws_337_ssm_secrets" {
  command = plan

  module {
    source = "./tests/evidence"
  }

  assert {
    condition     = alltrue([for parameter in run.apply.security_controls.ssm_parameters : parameter.type == "SecureString" && parameter.key_id == run.apply.security_controls.kms_keys.secrets.arn])
    error_message = "IN-12 / CKV2_AWS_34, CKV_AWS_337: every parameter Terraform writes is a SecureString under the secrets CMK."
  }

  assert {
    condition     = length(setintersection([for parameter in run.apply.security_controls.ssm_parameters : parameter.name], run.apply.security_controls.ssm_parameters_written_by_keys_rotate)) == 0
    error_message = "IN-12: Terraform does not manage the signing key parameters (npm run keys:rotate writes them)."
  }
}

run "in_13_ckv_aws_63_ckv_aws_355_least_privilege" {
  command = plan

  module {
    source = "./tests/evidence"
  }

  assert {
    condition = alltrue(flatten([
      for policy in run.apply.security_controls.iam_policies : [
        for statement in policy.Statement : alltrue([for action in flatten([statement.Action]) : action != "*" && !endswith(action, ":*")])
      ]
    ]))
    error_message = "IN-13 / CKV_AWS_63: no role may do every action (no \"*\" or \"service:*\" action)."
  }

  assert {
    condition = alltrue(flatten([
      for policy in run.apply.security_controls.iam_policies : [
        for statement in policy.Statement : !contains(flatten([statement.Resource]), "*") || contains(["EcrLogin", "SessionManager", "Tracing"], statement.Sid)
      ]
    ]))
    error_message = "IN-13 / CKV_AWS_355: \"*\" resources only for actions without resource-level permissions (ECR login, Session Manager, X-Ray)."
  }

  assert {
    condition = alltrue([
      for statement in run.apply.security_controls.iam_policies["sensitive-mover/sensitive-mover"].Statement :
      alltrue([for resource in flatten([statement.Resource]) : !startswith(resource, run.apply.security_controls.buckets.backup.arn)])
    ])
    error_message = "IN-13: the sensitive-mover cannot touch the backup bucket."
  }
}

run "in_14_one_identity_per_service" {
  command = plan

  module {
    source = "./tests/evidence"
  }

  assert {
    condition     = toset(keys(run.apply.security_controls.auto_scaling_groups)) == toset(["auth", "upload", "backup-sync"])
    error_message = "IN-14: one Auto Scaling group per service."
  }

  assert {
    condition     = length(distinct([for group in run.apply.security_controls.auto_scaling_groups : group.role_arn])) == 3 && length(distinct([for group in run.apply.security_controls.auto_scaling_groups : group.instance_profile_arn])) == 3
    error_message = "IN-14: each service's instances run under a role and instance profile of their own."
  }

  assert {
    condition = alltrue([
      for name, group in run.apply.security_controls.auto_scaling_groups :
      length(group.target_group_arns) == 1 && contains(group.target_group_arns, group.target_group_for) && run.apply.security_controls.launch_templates[name].instance_profile_arn == group.instance_profile_arn
    ])
    error_message = "IN-14: each group registers in its own service's target group only, with its own launch template and profile."
  }

  assert {
    condition     = alltrue([for group in run.apply.security_controls.auto_scaling_groups : group.cpu_target == 30 && group.cpu_metric == "ASGAverageCPUUtilization"])
    error_message = "IN-14: each group tracks its own average CPU at 30 %."
  }

  assert {
    condition = alltrue(flatten([
      for key, policy in run.apply.security_controls.iam_policies : [
        for statement in policy.Statement : [for action in flatten([statement.Action]) : !startswith(action, "s3:")]
      ] if startswith(key, "auth/")
    ]))
    error_message = "IN-14: auth's role has no S3 action."
  }

  assert {
    condition = alltrue(flatten([
      for key, policy in run.apply.security_controls.iam_policies : [
        for statement in policy.Statement : [for resource in flatten([statement.Resource]) : !startswith(resource, run.apply.security_controls.buckets.backup.arn)]
      ] if startswith(key, "upload/") || startswith(key, "auth/")
    ]))
    error_message = "IN-14: neither upload nor auth names the backup bucket."
  }
}

run "in_15_backups_locked" {
  command = plan

  module {
    source = "./tests/evidence"
  }

  assert {
    condition     = run.apply.security_controls.buckets.backup.object_lock.enabled && run.apply.security_controls.buckets.backup.object_lock.retention.mode == "GOVERNANCE" && run.apply.security_controls.buckets.backup.object_lock.retention.days == 30
    error_message = "IN-15: the backup bucket locks every version backup_retention_days (30) in governance mode."
  }

  assert {
    condition = alltrue(flatten([
      for policy in run.apply.security_controls.iam_policies : [
        for statement in policy.Statement : [
          for action in flatten([statement.Action]) : !contains(["s3:BypassGovernanceRetention", "s3:PutObjectRetention", "s3:PutObjectLegalHold", "s3:PutBucketObjectLockConfiguration", "s3:PutLifecycleConfiguration"], action)
        ]
      ]
    ]))
    error_message = "IN-15: no role of the project may bypass or shorten the retention."
  }
}

run "cors_primary_bucket_site_origin_only" {
  command = plan

  module {
    source = "./tests/evidence"
  }

  assert {
    condition = length(run.apply.security_controls.buckets.primary.cors_rules) == 1 && alltrue([
      for rule in run.apply.security_controls.buckets.primary.cors_rules :
      length(rule.allowed_origins) == 1 && contains(rule.allowed_origins, "https://files.example.test") && contains(rule.allowed_methods, "POST") && contains(rule.allowed_methods, "PUT") && contains(rule.expose_headers, "ETag") && !contains(rule.allowed_methods, "DELETE") && length(setsubtract(rule.allowed_headers, ["x-amz-checksum-sha256", "content-type"])) == 0
    ])
    error_message = "The primary bucket admits the site's origin only (POST for direct uploads, PUT of a resumable upload's parts with its signed SHA-256 header, ETag exposed), no DELETE, no other request header."
  }

  assert {
    condition     = alltrue([for role in ["sensitive", "backup", "access_logs"] : length(run.apply.security_controls.buckets[role].cors_rules) == 0])
    error_message = "No other bucket answers cross-origin requests."
  }
}

run "in_09_waf_body_rules_off_the_upload_routes" {
  command = plan

  module {
    source = "./tests/evidence"
  }

  assert {
    condition = alltrue([
      for group, body_rules in run.apply.security_controls.load_balancer.waf_body_rules : anytrue([
        for rule in run.apply.security_controls.load_balancer.web_acl_rules :
        rule.managed == [group] && rule.scope_down == ["upload-routes:/api/files"] && length(setsubtract(body_rules, rule.count_only)) == 0
      ]) if length(body_rules) > 0
    ])
    error_message = "On the upload routes (/api/files...) every body-inspecting managed rule counts only: the upload service inspects content itself."
  }

  assert {
    condition = alltrue([
      for group, body_rules in run.apply.security_controls.load_balancer.waf_body_rules : anytrue([
        for rule in run.apply.security_controls.load_balancer.web_acl_rules :
        rule.managed == [group] && rule.scope_down == ["off-upload-routes:/api/files"] && length(setsubtract(rule.count_only, ["SizeRestrictions_BODY"])) == 0
      ]) if length(body_rules) > 0
    ])
    error_message = "Everywhere else the groups with body rules block as AWS ships them (only the 8 KB body size rule counts)."
  }

  assert {
    condition     = alltrue([for rule in run.apply.security_controls.load_balancer.web_acl_rules : length(rule.scope_down) == 0 if contains(rule.managed, "AWSManagedRulesAmazonIpReputationList") || rule.rate_based])
    error_message = "The rate limit and the IP reputation list apply to every path."
  }
}

# A second environment applied beside the first into the same account: every name differs,
# nothing collides (an apply that reused a name would fail on the emulator: buckets, tables,
# roles, key aliases, load balancers and parameters are unique per account).
run "names_two_environments_side_by_side" {
  module {
    source = "./tests/second-environment"
  }

  assert {
    condition = alltrue([
      for key, name in run.apply.iam_evaluation.names : name != output.names[key]
      if !contains(["AWS_REGION", "LOG_LEVEL", "TRUSTED_PROXIES", "MAX_UPLOAD_BYTES", "QUOTA_BYTES", "BACKUP_RETENTION_DAYS"], key)
    ])
    error_message = "Every resource name of the second environment differs from the first's."
  }

  assert {
    condition     = length(setintersection(values(run.apply.service_role_arns), values(output.role_arns))) == 0
    error_message = "The environments' roles are distinct."
  }
}

# The harness (scripts/bin/terraform-check.mjs) reads this run's plan (-json -verbose)
# and fails on any change it shows: the applied infrastructure matches the code.
run "replan" {
  command = plan
}
