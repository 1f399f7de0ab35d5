# Mocked AWS provider of us-west-2: the values a real provider there would report.

mock_data "aws_region" {
  defaults = {
    name = "us-west-2"
  }
}

mock_resource "aws_cloudwatch_event_bus" {
  defaults = {
    arn = "arn:aws:events:us-west-2:123456789012:event-bus/moebi"
  }
}

mock_resource "aws_kms_replica_key" {
  defaults = {
    arn    = "arn:aws:kms:us-west-2:123456789012:key/mrk-0123456789abcdef0123456789abcdef"
    key_id = "mrk-0123456789abcdef0123456789abcdef"
  }
}

mock_resource "aws_apigatewayv2_api" {
  defaults = {
    id            = "a1b2c3d4e5"
    api_endpoint  = "https://a1b2c3d4e5.execute-api.us-west-2.amazonaws.com"
    execution_arn = "arn:aws:execute-api:us-west-2:123456789012:a1b2c3d4e5"
  }
}
