# One provider per region of infra/topology.json, plus the default provider, which lives in
# the primary region (the first region of the topology) and holds the global resources:
# IAM, the DynamoDB global table and the primary multi-region KMS key.
#
# Adding a region to the topology needs, besides the topology line, a provider block here and
# a module block in regions.tf (Terraform cannot create providers from data). The precondition
# on output "regions" fails the plan with a clear message until both exist.
#
# `offline = true` (infra/check.sh) lets a plan run with fake credentials and no network.
# `endpoint_url` sends every call to an AWS API emulator (scripts/deploy-emulator.sh).

provider "aws" {
  region                      = local.primary_region
  skip_credentials_validation = var.offline
  skip_requesting_account_id  = var.offline
  skip_metadata_api_check     = var.offline || var.endpoint_url != null
  skip_region_validation      = var.offline
  max_retries                 = var.offline ? 1 : null

  # An emulator (var.endpoint_url): every service the deployment calls; null keeps AWS's.
  endpoints {
    apigatewayv2 = var.endpoint_url
    cloudwatch   = var.endpoint_url
    cognitoidp   = var.endpoint_url
    dynamodb     = var.endpoint_url
    events       = var.endpoint_url
    iam          = var.endpoint_url
    kms          = var.endpoint_url
    lambda       = var.endpoint_url
    logs         = var.endpoint_url
    sns          = var.endpoint_url
    sqs          = var.endpoint_url
    sts          = var.endpoint_url
  }

  default_tags {
    tags = local.tags
  }
}

provider "aws" {
  alias                       = "us_west_2"
  region                      = "us-west-2"
  skip_credentials_validation = var.offline
  skip_requesting_account_id  = var.offline
  skip_metadata_api_check     = var.offline || var.endpoint_url != null
  skip_region_validation      = var.offline
  max_retries                 = var.offline ? 1 : null

  # An emulator (var.endpoint_url): every service the deployment calls; null keeps AWS's.
  endpoints {
    apigatewayv2 = var.endpoint_url
    cloudwatch   = var.endpoint_url
    cognitoidp   = var.endpoint_url
    dynamodb     = var.endpoint_url
    events       = var.endpoint_url
    iam          = var.endpoint_url
    kms          = var.endpoint_url
    lambda       = var.endpoint_url
    logs         = var.endpoint_url
    sns          = var.endpoint_url
    sqs          = var.endpoint_url
    sts          = var.endpoint_url
  }

  default_tags {
    tags = local.tags
  }
}

provider "aws" {
  alias                       = "us_east_1"
  region                      = "us-east-1"
  skip_credentials_validation = var.offline
  skip_requesting_account_id  = var.offline
  skip_metadata_api_check     = var.offline || var.endpoint_url != null
  skip_region_validation      = var.offline
  max_retries                 = var.offline ? 1 : null

  # An emulator (var.endpoint_url): every service the deployment calls; null keeps AWS's.
  endpoints {
    apigatewayv2 = var.endpoint_url
    cloudwatch   = var.endpoint_url
    cognitoidp   = var.endpoint_url
    dynamodb     = var.endpoint_url
    events       = var.endpoint_url
    iam          = var.endpoint_url
    kms          = var.endpoint_url
    lambda       = var.endpoint_url
    logs         = var.endpoint_url
    sns          = var.endpoint_url
    sqs          = var.endpoint_url
    sts          = var.endpoint_url
  }

  default_tags {
    tags = local.tags
  }
}

provider "aws" {
  alias                       = "eu_west_1"
  region                      = "eu-west-1"
  skip_credentials_validation = var.offline
  skip_requesting_account_id  = var.offline
  skip_metadata_api_check     = var.offline || var.endpoint_url != null
  skip_region_validation      = var.offline
  max_retries                 = var.offline ? 1 : null

  # An emulator (var.endpoint_url): every service the deployment calls; null keeps AWS's.
  endpoints {
    apigatewayv2 = var.endpoint_url
    cloudwatch   = var.endpoint_url
    cognitoidp   = var.endpoint_url
    dynamodb     = var.endpoint_url
    events       = var.endpoint_url
    iam          = var.endpoint_url
    kms          = var.endpoint_url
    lambda       = var.endpoint_url
    logs         = var.endpoint_url
    sns          = var.endpoint_url
    sqs          = var.endpoint_url
    sts          = var.endpoint_url
  }

  default_tags {
    tags = local.tags
  }
}
