"""Offline checks of the Terraform deployment (terraform/): run without the local stack."""
