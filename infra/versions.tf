terraform {
  # 1.7 brings mock_provider for `terraform test`; 1.11.4 is what CI runs.
  required_version = ">= 1.7.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # Pinned: CI has exactly this version preinstalled in a filesystem mirror.
      version = "= 5.100.0"
    }
  }
}
