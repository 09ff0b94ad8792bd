# Shared state: an S3 bucket (versioned, encrypted), locked with a lock file next to the state
# (Terraform >= 1.10 `use_lockfile`; no DynamoDB table needed). Partial on purpose: the bucket and
# key come at init from a file per environment (backend.hcl.example), the region from AWS_REGION
# (scripts/pipeline/init.sh passes -backend-config=region=...): one source for the region.
#   terraform init -backend-config=backend.hcl -backend-config="region=$AWS_REGION"
# The checks (`terraform validate`, `terraform test`) init with -backend=false.
terraform {
  backend "s3" {
    encrypt      = true
    use_lockfile = true
  }
}
