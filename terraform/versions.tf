# Terraform and provider versions, the providers' project and region, and the remote state backend.
#
# State lives in a Google Cloud Storage bucket you create once (versioned, uniform access; it holds the Redis
# AUTH string, so restrict who can read it). The backend block is partial on purpose: the bucket is given at
# init time, so this file names no project:
#   terraform -chdir=terraform init -backend-config=bucket=MY-STATE-BUCKET -backend-config=prefix=execution
# scripts/deploy.sh does this from TF_STATE_BUCKET (and TF_STATE_PREFIX). For a throwaway local state (a
# personal test project), delete the block; never for a shared deployment.

terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
  }

  backend "gcs" {}
}

provider "google" {
  project = var.project_id
  region  = var.region
}
