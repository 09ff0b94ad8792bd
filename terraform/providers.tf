locals {
  # When var.local_endpoint is set, every service the stack uses is sent to that one
  # endpoint, e.g. the moto emulator.
  use_local_endpoint = var.local_endpoint != null
}

provider "aws" {
  region = var.region

  # Emulator settings; null leaves the provider defaults for real AWS.
  s3_use_path_style           = local.use_local_endpoint ? true : null
  skip_credentials_validation = local.use_local_endpoint ? true : null
  skip_requesting_account_id  = local.use_local_endpoint ? true : null
  skip_metadata_api_check     = local.use_local_endpoint ? true : null

  dynamic "endpoints" {
    for_each = local.use_local_endpoint ? [var.local_endpoint] : []

    content {
      acm         = endpoints.value
      autoscaling = endpoints.value
      cloudwatch  = endpoints.value
      dynamodb    = endpoints.value
      ec2         = endpoints.value
      ecr         = endpoints.value
      elbv2       = endpoints.value
      events      = endpoints.value
      iam         = endpoints.value
      kms         = endpoints.value
      lambda      = endpoints.value
      logs        = endpoints.value
      s3          = endpoints.value
      sns         = endpoints.value
      sqs         = endpoints.value
      ssm         = endpoints.value
      sts         = endpoints.value
      wafv2       = endpoints.value
    }
  }

  default_tags {
    tags = merge(
      {
        Project     = "secure-cloud-storage"
        Environment = var.environment
        ManagedBy   = "terraform"
      },
      var.tags,
    )
  }
}
