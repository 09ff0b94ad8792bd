# Logs and alarms: one log group per service (the containers log there through
# Docker's awslogs driver), the WAF's log group, and alarms on the load balancer, the
# targets, the dead-letter queues and the backup lag, all to one encrypted SNS topic.

resource "aws_cloudwatch_log_group" "service" {
  for_each = local.services

  name              = "/${local.name}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this["observability"].arn
}

# WAF requires the "aws-waf-logs-" prefix.
resource "aws_cloudwatch_log_group" "waf" {
  name              = "aws-waf-logs-${local.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this["observability"].arn
}

resource "aws_wafv2_web_acl_logging_configuration" "this" {
  resource_arn            = aws_wafv2_web_acl.this.arn
  log_destination_configs = [aws_cloudwatch_log_group.waf.arn]

  redacted_fields {
    single_header {
      name = "authorization"
    }
  }

  redacted_fields {
    single_header {
      name = "cookie"
    }
  }
}

resource "aws_sns_topic" "alarms" {
  name              = "${local.name}-alarms"
  kms_master_key_id = aws_kms_key.this["observability"].arn
}

resource "aws_sns_topic_subscription" "alarm_email" {
  for_each = toset(var.alarm_emails)

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.value
}

locals {
  alarm_actions = [aws_sns_topic.alarms.arn]

  dead_letter_queues = {
    backup-events   = aws_sqs_queue.backup_events_dlq.name
    sensitive-mover = aws_sqs_queue.sensitive_mover_failures.name
  }
}

resource "aws_cloudwatch_metric_alarm" "alb_5xx" {
  for_each = {
    elb    = "HTTPCode_ELB_5XX_Count"
    target = "HTTPCode_Target_5XX_Count"
  }

  alarm_name          = "${local.name}-alb-${each.key}-5xx"
  alarm_description   = "The load balancer answered more than ${var.alarm_5xx_per_5_minutes} 5xx (${each.key}) in 5 minutes"
  namespace           = "AWS/ApplicationELB"
  metric_name         = each.value
  dimensions          = { LoadBalancer = aws_lb.this.arn_suffix }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.alarm_5xx_per_5_minutes
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "unhealthy_hosts" {
  for_each = local.services

  alarm_name          = "${local.name}-${each.key}-unhealthy-hosts"
  alarm_description   = "At least one ${each.key} target failed its /ready health check for 3 minutes"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "UnHealthyHostCount"
  dimensions          = { LoadBalancer = aws_lb.this.arn_suffix, TargetGroup = aws_lb_target_group.this[each.key].arn_suffix }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  for_each = local.dead_letter_queues

  alarm_name          = "${local.name}-${each.key}-dead-letters"
  alarm_description   = "Messages in ${each.value}: events that failed every retry need an operator"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "backup_lag" {
  alarm_name          = "${local.name}-backup-lag"
  alarm_description   = "The oldest backup event has waited more than ${var.backup_lag_alarm_seconds} s: backup-sync is behind or down"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = aws_sqs_queue.backup_events.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.backup_lag_alarm_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}
