# A second environment of the root module, applied beside the first (the `apply` run of
# controls.tftest.hcl) into the same account: every name is derived from name_prefix and
# environment, so nothing collides. Only the throwaway settings and the inputs the harness
# passes are forwarded.

variable "local_endpoint" {
  description = "URL of the AWS emulator (the harness passes it)."
  type        = string
  default     = null
}

variable "certificate_arn" {
  description = "ACM certificate of the HTTPS listener (the harness makes one in the emulator)."
  type        = string
}

variable "lambda_zip_path" {
  description = "The sensitive-mover's deployment package."
  type        = string
}

variable "site_origin" {
  description = "Origin of the site."
  type        = string
}

module "second" {
  source = "../.."

  environment     = "second"
  image_tag       = "test"
  site_origin     = var.site_origin
  local_endpoint  = var.local_endpoint
  certificate_arn = var.certificate_arn
  lambda_zip_path = var.lambda_zip_path

  kms_deletion_window_in_days  = 7
  dynamodb_deletion_protection = false
  force_destroy_buckets        = true
  alb_deletion_protection      = false
  ecr_force_delete             = true
}

output "names" {
  description = "The second environment's resource names (the services' environment and the extra names)."
  value       = module.second.iam_evaluation.names
}

output "role_arns" {
  description = "The second environment's service role ARNs."
  value       = module.second.service_role_arns
}
