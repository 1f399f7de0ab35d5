# Mocked default AWS provider (the primary region: global resources).

mock_data "aws_partition" {
  defaults = {
    partition  = "aws"
    dns_suffix = "amazonaws.com"
  }
}

mock_data "aws_caller_identity" {
  defaults = {
    account_id = "123456789012"
  }
}

mock_resource "aws_kms_key" {
  defaults = {
    arn    = "arn:aws:kms:us-west-2:123456789012:key/mrk-0123456789abcdef0123456789abcdef"
    key_id = "mrk-0123456789abcdef0123456789abcdef"
  }
}

mock_resource "aws_cognito_user_pool" {
  defaults = {
    id       = "us-west-2_AbCdEfGhI"
    arn      = "arn:aws:cognito-idp:us-west-2:123456789012:userpool/us-west-2_AbCdEfGhI"
    endpoint = "cognito-idp.us-west-2.amazonaws.com/us-west-2_AbCdEfGhI"
  }
}

mock_resource "aws_cognito_user_pool_client" {
  defaults = {
    id = "4f1tcl13nt1dm0eb1exampl3"
  }
}
