# DynamoDB tables: on-demand capacity, point-in-time recovery, encryption at rest
# with KMS, deletion protection, TTL where records expire on their own.

locals {
  dynamodb_tables = {
    users = {
      name          = local.names.users_table
      hash_key      = "username"
      range_key     = null
      ttl_attribute = null
    }
    sessions = {
      name          = local.names.sessions_table
      hash_key      = "pk"
      range_key     = null
      ttl_attribute = "expiresAt"
    }
    throttle = {
      name          = local.names.throttle_table
      hash_key      = "pk"
      range_key     = null
      ttl_attribute = "expiresAt"
    }
    files = {
      name          = local.names.files_table
      hash_key      = "userId"
      range_key     = "fileId"
      ttl_attribute = null
    }
  }
}

resource "aws_dynamodb_table" "this" {
  for_each = local.dynamodb_tables

  name                        = each.value.name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = each.value.hash_key
  range_key                   = each.value.range_key
  deletion_protection_enabled = var.dynamodb_deletion_protection

  dynamic "attribute" {
    for_each = compact([each.value.hash_key, each.value.range_key])

    content {
      name = attribute.value
      type = "S"
    }
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.dynamodb_kms_key_arn
  }

  dynamic "ttl" {
    for_each = each.value.ttl_attribute == null ? [] : [each.value.ttl_attribute]

    content {
      attribute_name = ttl.value
      enabled        = true
    }
  }
}
