# Network: a VPC over availability_zone_count zones with public subnets for the load
# balancer and private subnets (no route to the internet) for the instances, or an
# existing VPC given by var.existing_vpc. Instances reach AWS through VPC endpoints
# only: gateway endpoints for S3 and DynamoDB, interface endpoints for the rest, so
# they need no public address and no NAT gateway.

data "aws_availability_zones" "available" {
  state = "available"
}

locals {
  create_vpc = var.existing_vpc == null
  azs        = slice(data.aws_availability_zones.available.names, 0, var.availability_zone_count)

  # Two /20 ranges per zone out of the VPC's range: public first, then private.
  public_subnet_cidrs  = { for i, az in local.azs : az => cidrsubnet(var.vpc_cidr, 4, i) }
  private_subnet_cidrs = { for i, az in local.azs : az => cidrsubnet(var.vpc_cidr, 4, i + 8) }

  vpc_id             = local.create_vpc ? aws_vpc.this[0].id : var.existing_vpc.vpc_id
  public_subnet_ids  = local.create_vpc ? [for az in local.azs : aws_subnet.public[az].id] : var.existing_vpc.public_subnet_ids
  private_subnet_ids = local.create_vpc ? [for az in local.azs : aws_subnet.private[az].id] : var.existing_vpc.private_subnet_ids

  # The load balancer's addresses: the only proxies whose X-Forwarded-For the services believe.
  alb_subnet_cidrs = local.create_vpc ? values(local.public_subnet_cidrs) : var.existing_vpc.public_subnet_cidrs

  # Interface endpoints the instances need: Session Manager (ssm, ssmmessages,
  # ec2messages), SSM parameters, KMS, ECR (api and image layers; the layers themselves
  # come from S3), CloudWatch Logs and SQS.
  interface_endpoints = toset(["ssm", "ssmmessages", "ec2messages", "kms", "ecr.api", "ecr.dkr", "logs", "sqs"])
  gateway_endpoints   = toset(["s3", "dynamodb"])
}

resource "aws_vpc" "this" {
  count = local.create_vpc ? 1 : 0

  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = { Name = local.name }
}

# The default security group of a new VPC allows all traffic between its members:
# take every rule away (nothing uses it).
resource "aws_default_security_group" "this" {
  count = local.create_vpc ? 1 : 0

  vpc_id = aws_vpc.this[0].id

  tags = { Name = "${local.name}-default-unused" }
}

resource "aws_internet_gateway" "this" {
  count = local.create_vpc ? 1 : 0

  vpc_id = aws_vpc.this[0].id

  tags = { Name = local.name }
}

resource "aws_subnet" "public" {
  for_each = local.create_vpc ? local.public_subnet_cidrs : {}

  vpc_id            = aws_vpc.this[0].id
  availability_zone = each.key
  cidr_block        = each.value

  tags = { Name = "${local.name}-public-${each.key}", Tier = "public" }
}

resource "aws_subnet" "private" {
  for_each = local.create_vpc ? local.private_subnet_cidrs : {}

  vpc_id            = aws_vpc.this[0].id
  availability_zone = each.key
  cidr_block        = each.value

  tags = { Name = "${local.name}-private-${each.key}", Tier = "private" }
}

resource "aws_route_table" "public" {
  count = local.create_vpc ? 1 : 0

  vpc_id = aws_vpc.this[0].id

  tags = { Name = "${local.name}-public" }
}

resource "aws_route" "public_internet" {
  count = local.create_vpc ? 1 : 0

  route_table_id         = aws_route_table.public[0].id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this[0].id
}

resource "aws_route_table_association" "public" {
  for_each = local.create_vpc ? local.public_subnet_cidrs : {}

  subnet_id      = aws_subnet.public[each.key].id
  route_table_id = aws_route_table.public[0].id
}

# No default route: the private subnets reach AWS through the endpoints only.
resource "aws_route_table" "private" {
  count = local.create_vpc ? 1 : 0

  vpc_id = aws_vpc.this[0].id

  tags = { Name = "${local.name}-private" }
}

resource "aws_route_table_association" "private" {
  for_each = local.create_vpc ? local.private_subnet_cidrs : {}

  subnet_id      = aws_subnet.private[each.key].id
  route_table_id = aws_route_table.private[0].id
}

data "aws_route_tables" "private" {
  count = local.create_vpc ? 0 : 1

  vpc_id = local.vpc_id

  filter {
    name   = "association.subnet-id"
    values = var.existing_vpc.private_subnet_ids
  }
}

resource "aws_vpc_endpoint" "gateway" {
  for_each = var.create_vpc_endpoints ? local.gateway_endpoints : toset([])

  vpc_id            = local.vpc_id
  service_name      = "com.amazonaws.${local.region}.${each.key}"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = local.create_vpc ? [aws_route_table.private[0].id] : data.aws_route_tables.private[0].ids

  tags = { Name = "${local.name}-${each.key}" }
}

resource "aws_vpc_endpoint" "interface" {
  for_each = var.create_vpc_endpoints ? local.interface_endpoints : toset([])

  vpc_id              = local.vpc_id
  service_name        = "com.amazonaws.${local.region}.${each.key}"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = local.private_subnet_ids
  security_group_ids  = [aws_security_group.endpoints.id]
  private_dns_enabled = true

  tags = { Name = "${local.name}-${each.key}" }
}

data "aws_ec2_managed_prefix_list" "gateway" {
  for_each = local.gateway_endpoints

  name = "com.amazonaws.${local.region}.${each.key}"
}

################################################################################
# Security groups (security checklist IN-10): 0.0.0.0/0 only on the load balancer's
# 80 and 443; the instances accept only the load balancer, on the service ports; no
# SSH anywhere (Session Manager instead).
################################################################################

resource "aws_security_group" "alb" {
  name_prefix = "${local.name}-alb-"
  description = "Load balancer: HTTP and HTTPS from the internet, service ports to the instances"
  vpc_id      = local.vpc_id

  tags = { Name = "${local.name}-alb" }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group_rule" "alb_from_internet" {
  for_each = { http = 80, https = 443 }

  security_group_id = aws_security_group.alb.id
  type              = "ingress"
  description       = "${upper(each.key)} from the internet"
  protocol          = "tcp"
  from_port         = each.value
  to_port           = each.value
  cidr_blocks       = ["0.0.0.0/0"]
}

resource "aws_security_group_rule" "alb_to_instances" {
  for_each = local.services

  security_group_id        = aws_security_group.alb.id
  type                     = "egress"
  description              = "To the ${each.key} containers"
  protocol                 = "tcp"
  from_port                = each.value.port
  to_port                  = each.value.port
  source_security_group_id = aws_security_group.instances.id
}

resource "aws_security_group" "instances" {
  name_prefix = "${local.name}-instances-"
  description = "Service instances: the service ports from the load balancer only; HTTPS to the VPC endpoints"
  vpc_id      = local.vpc_id

  tags = { Name = "${local.name}-instances" }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group_rule" "instances_from_alb" {
  for_each = local.services

  security_group_id        = aws_security_group.instances.id
  type                     = "ingress"
  description              = "${each.key} from the load balancer"
  protocol                 = "tcp"
  from_port                = each.value.port
  to_port                  = each.value.port
  source_security_group_id = aws_security_group.alb.id
}

resource "aws_security_group_rule" "instances_to_endpoints" {
  security_group_id        = aws_security_group.instances.id
  type                     = "egress"
  description              = "HTTPS to the interface endpoints"
  protocol                 = "tcp"
  from_port                = 443
  to_port                  = 443
  source_security_group_id = aws_security_group.endpoints.id
}

resource "aws_security_group_rule" "instances_to_gateway_endpoints" {
  security_group_id = aws_security_group.instances.id
  type              = "egress"
  description       = "HTTPS to S3 and DynamoDB through their gateway endpoints"
  protocol          = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_ids   = [for list in data.aws_ec2_managed_prefix_list.gateway : list.id]
}

resource "aws_security_group" "endpoints" {
  name_prefix = "${local.name}-endpoints-"
  description = "Interface VPC endpoints: HTTPS from the instances"
  vpc_id      = local.vpc_id

  tags = { Name = "${local.name}-endpoints" }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group_rule" "endpoints_from_instances" {
  security_group_id        = aws_security_group.endpoints.id
  type                     = "ingress"
  description              = "HTTPS from the instances"
  protocol                 = "tcp"
  from_port                = 443
  to_port                  = 443
  source_security_group_id = aws_security_group.instances.id
}

################################################################################
# VPC flow logs: every accepted and rejected flow of the VPC (new or existing) to an
# encrypted log group, delivered under a role that may write only there.
################################################################################

resource "aws_cloudwatch_log_group" "flow_logs" {
  name              = "/${local.name}/vpc-flow-logs"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this["observability"].arn
}

data "aws_iam_policy_document" "flow_logs_assume_role" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

data "aws_iam_policy_document" "flow_logs" {
  statement {
    sid       = "WriteFlowLogs"
    actions   = ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.flow_logs.arn}:*"]
  }
}

resource "aws_iam_role" "flow_logs" {
  name               = "${local.name}-vpc-flow-logs"
  description        = "VPC flow logs: deliver to their log group"
  assume_role_policy = data.aws_iam_policy_document.flow_logs_assume_role.json
}

resource "aws_iam_role_policy" "flow_logs" {
  name   = "vpc-flow-logs"
  role   = aws_iam_role.flow_logs.id
  policy = data.aws_iam_policy_document.flow_logs.json
}

resource "aws_flow_log" "this" {
  vpc_id               = local.vpc_id
  traffic_type         = "ALL"
  log_destination_type = "cloud-watch-logs"
  log_destination      = aws_cloudwatch_log_group.flow_logs.arn
  iam_role_arn         = aws_iam_role.flow_logs.arn
}
