# Mocked AWS provider of eu-west-1: the values a real provider there would report.

mock_data "aws_region" {
  defaults = {
    name = "eu-west-1"
  }
}

mock_resource "aws_cloudwatch_event_bus" {
  defaults = {
    arn = "arn:aws:events:eu-west-1:123456789012:event-bus/moebi"
  }
}

mock_resource "aws_kms_replica_key" {
  defaults = {
    arn    = "arn:aws:kms:eu-west-1:123456789012:key/mrk-0123456789abcdef0123456789abcdef"
    key_id = "mrk-0123456789abcdef0123456789abcdef"
  }
}

mock_resource "aws_apigatewayv2_api" {
  defaults = {
    id            = "k1l2m3n4o5"
    api_endpoint  = "https://k1l2m3n4o5.execute-api.eu-west-1.amazonaws.com"
    execution_arn = "arn:aws:execute-api:eu-west-1:123456789012:k1l2m3n4o5"
  }
}
