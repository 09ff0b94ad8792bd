# Shared lookups. The stack is split by concern: kms.tf, storage.tf,
# dynamodb.tf, ssm.tf (network.tf, compute.tf, lambda.tf... come later).

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  account_root_arn = "arn:${local.partition}:iam::${local.account_id}:root"
}
