# Compute: each service in an Auto Scaling group of its own, in the private subnets
# (security checklist IN-08, IN-10, IN-14): its own launch template, instance profile
# and role (iam.tf), target group, and target tracking on its own average CPU. A code
# execution in one service (upload parses untrusted files) holds only that service's
# credentials: the instance metadata serves one role per instance. Images come from
# this module's ECR repositories, tagged var.image_tag; a new tag makes a new launch
# template version, which each group rolls out with an instance refresh.

locals {
  # The services behind the load balancer: container port, and their group's size.
  services = {
    auth          = { port = 3001 }
    upload        = { port = 3002 }
    "backup-sync" = { port = 3003 }
  }

  registry = "${local.account_id}.dkr.ecr.${local.region}.amazonaws.com"

  # One instance runs one service: the user data starts that container only.
  user_data = {
    for name, service in local.services : name => templatefile("${path.module}/templates/user-data.sh.tftpl", {
      region           = local.region
      registry         = local.registry
      config_parameter = aws_ssm_parameter.service_environment.name
      services = {
        (name) = {
          port      = service.port
          image     = "${aws_ecr_repository.this[name].repository_url}:${var.image_tag}"
          log_group = aws_cloudwatch_log_group.service[name].name
        }
      }
    })
  }

  # var.ami_id pins the image; without it the public parameter's current AMI is taken.
  ami_id = coalesce(var.ami_id, try(data.aws_ssm_parameter.ami[0].insecure_value, null))
}

data "aws_ssm_parameter" "ami" {
  count = var.ami_id == null ? 1 : 0

  name = coalesce(var.ami_ssm_parameter, "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-${var.architecture}")
}

################################################################################
# ECR: one repository per service; immutable tags, scanned on push, old images expire.
################################################################################

resource "aws_ecr_repository" "this" {
  for_each = local.services

  name                 = "${local.names.ecr_repository_prefix}/${each.key}"
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.ecr_force_delete

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
  }
}

resource "aws_ecr_lifecycle_policy" "this" {
  for_each = local.services

  repository = aws_ecr_repository.this[each.key].name
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Expire untagged images after 7 days"
        selection    = { tagStatus = "untagged", countType = "sinceImagePushed", countUnit = "days", countNumber = 7 }
        action       = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "Keep the ${var.ecr_images_to_keep} most recent images"
        selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = var.ecr_images_to_keep }
        action       = { type = "expire" }
      },
    ]
  })
}

################################################################################
# One role and instance profile per service: ECR pulls of its image, its log group,
# Session Manager, and its data (iam.tf). No SSH key: operators use Session Manager.
################################################################################

data "aws_iam_policy_document" "ec2_assume_role" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "service" {
  for_each = local.services

  name               = "${local.name}-${each.key}"
  description        = "${each.key} instances: pull its image, write its logs, Session Manager, its data"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume_role.json
}

resource "aws_iam_instance_profile" "service" {
  for_each = local.services

  name = "${local.name}-${each.key}"
  role = aws_iam_role.service[each.key].name
}

################################################################################
# Launch templates and Auto Scaling groups, one per service
################################################################################

resource "aws_launch_template" "service" {
  for_each = local.services

  name_prefix            = "${local.name}-${each.key}-"
  description            = "Secure Cloud Storage ${each.key}, image ${var.image_tag}"
  image_id               = local.ami_id
  instance_type          = var.instance_type
  update_default_version = true
  user_data              = base64encode(local.user_data[each.key])
  ebs_optimized          = true

  iam_instance_profile {
    arn = aws_iam_instance_profile.service[each.key].arn
  }

  # IMDSv2 only, one hop: the container on the host network reaches it, nothing further.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  network_interfaces {
    associate_public_ip_address = false
    delete_on_termination       = true
    security_groups             = [aws_security_group.instances.id]
  }

  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      volume_type           = "gp3"
      volume_size           = var.root_volume_size_gib
      encrypted             = true
      delete_on_termination = true
    }
  }

  monitoring {
    enabled = true
  }

  tag_specifications {
    resource_type = "instance"
    tags          = { Name = "${local.name}-${each.key}", Service = each.key }
  }

  tag_specifications {
    resource_type = "volume"
    tags          = { Name = "${local.name}-${each.key}", Service = each.key }
  }
}

resource "aws_autoscaling_group" "service" {
  for_each = local.services

  name                      = "${local.name}-${each.key}"
  vpc_zone_identifier       = local.private_subnet_ids
  min_size                  = var.asg_min_size
  max_size                  = var.asg_max_size
  target_group_arns         = [aws_lb_target_group.this[each.key].arn]
  health_check_type         = "ELB"
  health_check_grace_period = var.health_check_grace_period_seconds

  launch_template {
    id      = aws_launch_template.service[each.key].id
    version = aws_launch_template.service[each.key].latest_version
  }

  # A new launch template version (new image tag, new settings) is rolled out
  # instance by instance, never below full capacity.
  instance_refresh {
    strategy = "Rolling"

    preferences {
      min_healthy_percentage = 100
      max_healthy_percentage = 200
      instance_warmup        = var.health_check_grace_period_seconds
      # The refresh undoes itself when the group's unhealthy-host alarm fires during it; the
      # pipeline (scripts/pipeline/rollout.sh) waits for it and fails on a rollback.
      auto_rollback = true

      alarm_specification {
        alarms = [aws_cloudwatch_metric_alarm.unhealthy_hosts[each.key].alarm_name]
      }
    }
  }

  dynamic "tag" {
    for_each = merge({ Project = "secure-cloud-storage", Environment = var.environment, Service = each.key }, var.tags)

    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  # Capacity is the scaling policy's business once the group exists.
  lifecycle {
    ignore_changes = [desired_capacity]
  }
}

# Each group follows its own service's load: average CPU of its instances.
resource "aws_autoscaling_policy" "cpu" {
  for_each = local.services

  name                   = "${local.name}-${each.key}-cpu-target"
  autoscaling_group_name = aws_autoscaling_group.service[each.key].name
  policy_type            = "TargetTrackingScaling"

  target_tracking_configuration {
    target_value = var.cpu_target_percent

    predefined_metric_specification {
      predefined_metric_type = "ASGAverageCPUUtilization"
    }
  }
}
