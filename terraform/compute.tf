# Compute: the three services as containers on EC2 instances in an Auto Scaling group
# in the private subnets (security checklist IN-08, IN-10). Images come from this
# module's ECR repositories, tagged var.image_tag; a new tag makes a new launch
# template version, which the group rolls out with an instance refresh.

locals {
  # The services behind the load balancer: container port, image repository, logs.
  services = {
    auth          = { port = 3001 }
    upload        = { port = 3002 }
    "backup-sync" = { port = 3003 }
  }

  registry = "${local.account_id}.dkr.ecr.${local.region}.amazonaws.com"

  user_data = templatefile("${path.module}/templates/user-data.sh.tftpl", {
    region           = local.region
    registry         = local.registry
    config_parameter = aws_ssm_parameter.service_environment.name
    services = {
      for name, service in local.services : name => {
        port      = service.port
        image     = "${aws_ecr_repository.this[name].repository_url}:${var.image_tag}"
        log_group = aws_cloudwatch_log_group.service[name].name
      }
    }
  })
}

data "aws_ssm_parameter" "ami" {
  name = var.ami_ssm_parameter
}

################################################################################
# ECR: one repository per service; immutable tags, scanned on push, old images expire.
################################################################################

resource "aws_ecr_repository" "this" {
  for_each = local.services

  name                 = "${var.ecr_repository_prefix}/${each.key}"
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
# Instance role: ECR pulls, its log groups, Session Manager, and each service's data
# (iam.tf). No SSH key: operators use Session Manager.
################################################################################

data "aws_iam_policy_document" "ec2_assume_role" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "instance" {
  name               = "${var.name_prefix}-instance"
  description        = "Service instances: pull images, write logs, Session Manager, the services' data"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume_role.json
}

resource "aws_iam_instance_profile" "this" {
  name = "${var.name_prefix}-instance"
  role = aws_iam_role.instance.name
}

################################################################################
# Launch template and Auto Scaling group
################################################################################

resource "aws_launch_template" "this" {
  name_prefix            = "${var.name_prefix}-"
  description            = "Secure Cloud Storage services, images ${var.image_tag}"
  image_id               = data.aws_ssm_parameter.ami.insecure_value
  instance_type          = var.instance_type
  update_default_version = true
  user_data              = base64encode(local.user_data)
  ebs_optimized          = true

  iam_instance_profile {
    arn = aws_iam_instance_profile.this.arn
  }

  # IMDSv2 only, one hop: containers on the host network reach it, nothing further.
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
    tags          = { Name = "${var.name_prefix}-service" }
  }

  tag_specifications {
    resource_type = "volume"
    tags          = { Name = "${var.name_prefix}-service" }
  }
}

resource "aws_autoscaling_group" "this" {
  name                      = var.name_prefix
  vpc_zone_identifier       = local.private_subnet_ids
  min_size                  = var.asg_min_size
  max_size                  = var.asg_max_size
  target_group_arns         = [for name in keys(local.services) : aws_lb_target_group.this[name].arn]
  health_check_type         = "ELB"
  health_check_grace_period = var.health_check_grace_period_seconds

  launch_template {
    id      = aws_launch_template.this.id
    version = aws_launch_template.this.latest_version
  }

  # A new launch template version (new image tag, new settings) is rolled out
  # instance by instance, never below full capacity.
  instance_refresh {
    strategy = "Rolling"

    preferences {
      min_healthy_percentage = 100
      max_healthy_percentage = 200
      instance_warmup        = var.health_check_grace_period_seconds
    }
  }

  dynamic "tag" {
    for_each = merge({ Project = "secure-cloud-storage", Environment = var.environment }, var.tags)

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

resource "aws_autoscaling_policy" "cpu" {
  name                   = "${var.name_prefix}-cpu-target"
  autoscaling_group_name = aws_autoscaling_group.this.name
  policy_type            = "TargetTrackingScaling"

  target_tracking_configuration {
    target_value = var.cpu_target_percent

    predefined_metric_specification {
      predefined_metric_type = "ASGAverageCPUUtilization"
    }
  }
}
