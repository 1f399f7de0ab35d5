# Sign-in: one Cognito user pool, in the primary region (default provider), whose issuer every
# region's HTTP API trusts (modules/region/api.tf). Its users are the participants and stores
# of the topology, named as there; the group a user is in (`cognito:groups` in the token) says
# which kind it is. Terraform makes the pool, the app client and the two groups; an operator adds
# the users (infra/README.md, "Users"): no password is ever in Terraform's state.

locals {
  user_groups = {
    participants = "People who chat and ask the stock (topology.json participants)"
    stores       = "Stores that add to the stock (topology.json stores)"
  }
  # The log groups of the HTTP APIs' access logs (a prefix the key policies admit).
  api_access_log_prefix = "/aws/http-api/moebi-"
}

resource "aws_cognito_user_pool" "moebi" {
  name = "moebi"
  # Usernames are the topology's names exactly ("alex", "store-1"): case matters.
  username_configuration {
    case_sensitive = true
  }
  deletion_protection = var.deletion_protection ? "ACTIVE" : "INACTIVE"

  # Only an operator creates users (a self-registered user would choose its own name).
  admin_create_user_config {
    allow_admin_create_user_only = true
  }

  password_policy {
    minimum_length                   = 12
    require_lowercase                = true
    require_uppercase                = true
    require_numbers                  = true
    require_symbols                  = false
    temporary_password_validity_days = 3
  }

  # No e-mail or phone is kept: an operator resets a forgotten password.
  account_recovery_setting {
    recovery_mechanism {
      name     = "admin_only"
      priority = 1
    }
  }

  mfa_configuration = "OFF"
}

# The app client of moebi's clients (the CLI, apps): public, so no secret; password sign-in
# (USER_PASSWORD_AUTH, or SRP) and refresh.
resource "aws_cognito_user_pool_client" "moebi" {
  name                          = "moebi-clients"
  user_pool_id                  = aws_cognito_user_pool.moebi.id
  generate_secret               = false
  explicit_auth_flows           = ["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH"]
  prevent_user_existence_errors = "ENABLED"
  enable_token_revocation       = true

  access_token_validity  = 1
  id_token_validity      = 1
  refresh_token_validity = 30
  token_validity_units {
    access_token  = "hours"
    id_token      = "hours"
    refresh_token = "days"
  }
}

resource "aws_cognito_user_group" "moebi" {
  for_each     = local.user_groups
  name         = each.key
  description  = each.value
  user_pool_id = aws_cognito_user_pool.moebi.id
}

locals {
  # What the HTTP APIs' JWT authorizers check: the pool's issuer and this app client.
  # (`endpoint` is "cognito-idp.<region>.amazonaws.com/<pool id>", the issuer without https://.)
  signin = {
    issuer    = "https://${aws_cognito_user_pool.moebi.endpoint}"
    audience  = [aws_cognito_user_pool_client.moebi.id]
    groups    = keys(local.user_groups)
    pool_id   = aws_cognito_user_pool.moebi.id
    client_id = aws_cognito_user_pool_client.moebi.id
  }
}
