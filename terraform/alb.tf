# The public entry point (security checklist IN-09): an Application Load Balancer with
# HTTP -> HTTPS redirect, TLS 1.2+ on the HTTPS listener, invalid header fields
# dropped, desync mitigation, access logs, deletion protection and a WAF web ACL.
#
# Its path rules are the local gateway's (PATH_RULES in packages/local-stack/src/gateway/app.ts,
# the product contract's gateway rules): the Terraform check compares the applied
# listener rules with that table. /metrics (the gateway's PRIVATE_PATHS) is answered
# 404 by the load balancer itself: each service serves it on its own port for the
# scraper only (and answers 404 to requests that carry X-Forwarded-For, which also
# covers percent-encoded forms of the path that the listener's patterns do not match).

locals {
  # In priority order; the first match wins, anything else goes to the default (upload).
  path_rules = [
    { name = "auth", patterns = ["/auth/*"], service = "auth" },
    { name = "files", patterns = ["/api/files*"], service = "upload" },
    { name = "backup", patterns = ["/api/backup/*"], service = "backup-sync" },
  ]
  default_service = "upload"

  # Never forwarded: answered by the load balancer with a fixed 404 (the gateway's PRIVATE_PATHS).
  blocked_path_patterns = ["/metrics", "/metrics/*"]
}

resource "aws_lb" "this" {
  name               = local.name
  load_balancer_type = "application"
  internal           = false
  subnets            = local.public_subnet_ids
  security_groups    = [aws_security_group.alb.id]

  drop_invalid_header_fields = true
  desync_mitigation_mode     = var.alb_desync_mitigation_mode
  enable_deletion_protection = var.alb_deletion_protection
  # Below the services' keep-alive timeout (65 s), so the ALB never reuses a
  # connection the service has just closed (security checklist FX-02).
  idle_timeout = var.alb_idle_timeout_seconds

  access_logs {
    bucket  = module.access_logs.id
    prefix  = local.alb_access_log_prefix
    enabled = true
  }
}

resource "aws_lb_target_group" "this" {
  for_each = local.services

  name                 = "${local.name}-${each.key}"
  port                 = each.value.port
  protocol             = "HTTP"
  vpc_id               = local.vpc_id
  target_type          = "instance"
  deregistration_delay = var.deregistration_delay_seconds

  health_check {
    path                = "/ready"
    port                = "traffic-port"
    protocol            = "HTTP"
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"

    redirect {
      protocol    = "HTTPS"
      port        = "443"
      status_code = "HTTP_301"
    }
  }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = var.alb_ssl_policy
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this[local.default_service].arn
  }
}

resource "aws_lb_listener_rule" "blocked" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 1

  action {
    type = "fixed-response"

    fixed_response {
      content_type = "application/json"
      status_code  = "404"
      message_body = jsonencode({ statusCode = 404, code = "NOT_FOUND", error = "Not Found", message = "Not found" })
    }
  }

  condition {
    path_pattern {
      values = local.blocked_path_patterns
    }
  }
}

resource "aws_lb_listener_rule" "path" {
  for_each = { for i, rule in local.path_rules : rule.name => merge(rule, { priority = 10 * (i + 1) }) }

  listener_arn = aws_lb_listener.https.arn
  priority     = each.value.priority

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this[each.value.service].arn
  }

  condition {
    path_pattern {
      values = each.value.patterns
    }
  }
}

################################################################################
# WAF: a per-address rate limit and AWS managed rule groups in front of the ALB.
################################################################################

locals {
  # Upload routes carry files whose content the upload service inspects itself (type,
  # text, archives): the managed rules that read a request's body would answer 403 to
  # ordinary text, CSV, JSON and HTML-like files there. Each managed group therefore runs
  # twice: whole on every other path, and on the upload routes with its body rules
  # counting only (its header, URI and query rules still block).
  waf_upload_path_prefix = "/api/files"

  waf_managed_rule_groups = {
    AWSManagedRulesAmazonIpReputationList = { priority = 10, body_rules = [] }
    AWSManagedRulesCommonRuleSet = {
      priority   = 20
      body_rules = ["SizeRestrictions_BODY", "CrossSiteScripting_BODY", "GenericLFI_BODY", "GenericRFI_BODY", "EC2MetaDataSSRF_BODY", "RestrictedExtensions_BODY"]
    }
    AWSManagedRulesKnownBadInputsRuleSet = { priority = 30, body_rules = ["JavaDeserializationRCE_BODY", "Log4JRCE_BODY"] }
  }

  # Every group off the upload routes; groups with body rules again on them, body rules counted.
  waf_managed_rules = merge(
    {
      for name, group in local.waf_managed_rule_groups : name => {
        group    = name
        priority = group.priority
        scope    = length(group.body_rules) > 0 ? "off-upload-routes" : "everywhere"
        # The body size rule (8 KB) only counts anywhere: the services enforce their own limits.
        count_only = [for rule in group.body_rules : rule if rule == "SizeRestrictions_BODY"]
      }
    },
    {
      for name, group in local.waf_managed_rule_groups : "${name}-upload-routes" => {
        group      = name
        priority   = group.priority + 1
        scope      = "upload-routes"
        count_only = group.body_rules
      } if length(group.body_rules) > 0
    },
  )
}

resource "aws_wafv2_web_acl" "this" {
  name  = local.name
  scope = "REGIONAL"

  default_action {
    allow {}
  }

  rule {
    name     = "rate-limit-per-address"
    priority = 1

    action {
      block {}
    }

    statement {
      rate_based_statement {
        limit              = var.waf_rate_limit_per_5_minutes
        aggregate_key_type = "IP"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.name}-rate-limit"
      sampled_requests_enabled   = true
    }
  }

  dynamic "rule" {
    for_each = local.waf_managed_rules

    content {
      name     = rule.key
      priority = rule.value.priority

      override_action {
        none {}
      }

      statement {
        managed_rule_group_statement {
          vendor_name = "AWS"
          name        = rule.value.group

          dynamic "rule_action_override" {
            for_each = rule.value.count_only

            content {
              name = rule_action_override.value

              action_to_use {
                count {}
              }
            }
          }

          # Upload routes: the path starts with waf_upload_path_prefix (or, for the other
          # instance of the group, does not).
          dynamic "scope_down_statement" {
            for_each = rule.value.scope == "everywhere" ? [] : [rule.value.scope == "upload-routes"]
            iterator = upload_routes

            content {
              dynamic "byte_match_statement" {
                for_each = upload_routes.value ? [true] : []

                content {
                  search_string         = local.waf_upload_path_prefix
                  positional_constraint = "STARTS_WITH"

                  field_to_match {
                    uri_path {}
                  }

                  text_transformation {
                    priority = 0
                    type     = "NONE"
                  }
                }
              }

              dynamic "not_statement" {
                for_each = upload_routes.value ? [] : [true]

                content {
                  statement {
                    byte_match_statement {
                      search_string         = local.waf_upload_path_prefix
                      positional_constraint = "STARTS_WITH"

                      field_to_match {
                        uri_path {}
                      }

                      text_transformation {
                        priority = 0
                        type     = "NONE"
                      }
                    }
                  }
                }
              }
            }
          }
        }
      }

      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = "${local.name}-${rule.key}"
        sampled_requests_enabled   = true
      }
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = local.name
    sampled_requests_enabled   = true
  }
}

resource "aws_wafv2_web_acl_association" "this" {
  resource_arn = aws_lb.this.arn
  web_acl_arn  = aws_wafv2_web_acl.this.arn
}
