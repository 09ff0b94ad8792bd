output "id" {
  description = "Name of the bucket, available once its policy and public access block are in place."
  value       = aws_s3_bucket.this.id

  depends_on = [
    aws_s3_bucket_policy.this,
    aws_s3_bucket_public_access_block.this,
  ]
}

output "arn" {
  description = "ARN of the bucket."
  value       = aws_s3_bucket.this.arn
}

output "policy" {
  description = "The bucket policy document (JSON)."
  value       = data.aws_iam_policy_document.this.json
}
