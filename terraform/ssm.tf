# SSM parameters (security checklist IN-12). Terraform does not create the auth
# service's key parameters, so no key material ever reaches the state: `npm run keys:rotate`
# writes the signing key as a SecureString under the secrets CMK and the matching
# public keys as a String. Terraform only names them and grants access to them.

locals {
  ssm_parameter_names = {
    jwt_signing_key     = "/${local.name}/auth/jwt-signing-key"
    jwt_public_keys     = "/${local.name}/auth/jwt-public-keys"
    service_environment = "/${local.name}/config/service-environment"
  }

  ssm_parameter_arns = {
    for key, name in local.ssm_parameter_names :
    key => "arn:${local.partition}:ssm:${local.region}:${local.account_id}:parameter${name}"
  }
  jwt_parameter_arns = [local.ssm_parameter_arns.jwt_signing_key, local.ssm_parameter_arns.jwt_public_keys]

  # SSM calls KMS with the parameter ARN as encryption context.
  secrets_kms_conditions = [
    {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["ssm.${local.region}.amazonaws.com"]
    },
    {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:PARAMETER_ARN"
      values   = [local.ssm_parameter_arns.jwt_signing_key]
    },
  ]
}

# For the auth service: read (and decrypt) the signing key and the public keys.
data "aws_iam_policy_document" "jwt_signing_key_read" {
  statement {
    sid       = "ReadJwtParameters"
    actions   = ["ssm:GetParameter"]
    resources = local.jwt_parameter_arns
  }

  statement {
    sid       = "DecryptJwtSigningKey"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.this["secrets"].arn]

    dynamic "condition" {
      for_each = local.secrets_kms_conditions

      content {
        test     = condition.value.test
        variable = condition.value.variable
        values   = condition.value.values
      }
    }
  }
}

# For services that only verify access tokens.
data "aws_iam_policy_document" "jwt_public_keys_read" {
  statement {
    sid       = "ReadJwtPublicKeys"
    actions   = ["ssm:GetParameter"]
    resources = [local.ssm_parameter_arns.jwt_public_keys]
  }
}

# For the operators (or CI role) that run `npm run keys:rotate`.
data "aws_iam_policy_document" "jwt_key_rotation" {
  statement {
    sid = "WriteJwtParameters"
    actions = [
      "ssm:GetParameter",
      "ssm:PutParameter",
    ]
    resources = local.jwt_parameter_arns
  }

  statement {
    sid = "EncryptJwtSigningKey"
    actions = [
      "kms:Decrypt",
      "kms:Encrypt",
      "kms:GenerateDataKey",
    ]
    resources = [aws_kms_key.this["secrets"].arn]

    dynamic "condition" {
      for_each = local.secrets_kms_conditions

      content {
        test     = condition.value.test
        variable = condition.value.variable
        values   = condition.value.values
      }
    }
  }
}

resource "aws_iam_policy" "jwt_signing_key_read" {
  name        = "${local.name}-jwt-signing-key-read"
  description = "Read and decrypt the JWT signing key and public keys in SSM (auth service)."
  policy      = data.aws_iam_policy_document.jwt_signing_key_read.json
}

resource "aws_iam_policy" "jwt_public_keys_read" {
  name        = "${local.name}-jwt-public-keys-read"
  description = "Read the JWT public keys in SSM (services that verify access tokens)."
  policy      = data.aws_iam_policy_document.jwt_public_keys_read.json
}

resource "aws_iam_policy" "jwt_key_rotation" {
  name        = "${local.name}-jwt-key-rotation"
  description = "Write the JWT signing key (SecureString under the secrets CMK) and public keys in SSM (npm run keys:rotate)."
  policy      = data.aws_iam_policy_document.jwt_key_rotation.json
}

# The services' configuration (names and ARNs, no secret), read by each container at
# start (compute.tf). A SecureString under the secrets key like every parameter of the
# application; its value is not secret, so Terraform may hold it.
resource "aws_ssm_parameter" "service_environment" {
  name        = local.ssm_parameter_names.service_environment
  description = "Environment of the Secure Cloud Storage services (JSON object; no secrets)"
  type        = "SecureString"
  key_id      = aws_kms_key.this["secrets"].arn
  value       = jsonencode(local.service_environment)
}
