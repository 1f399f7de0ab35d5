# Mocked AWS provider of us-east-1: the values a real provider there would report.

mock_data "aws_region" {
  defaults = {
    name = "us-east-1"
  }
}

mock_resource "aws_cloudwatch_event_bus" {
  defaults = {
    arn = "arn:aws:events:us-east-1:123456789012:event-bus/moebi"
  }
}

mock_resource "aws_kms_replica_key" {
  defaults = {
    arn    = "arn:aws:kms:us-east-1:123456789012:key/mrk-0123456789abcdef0123456789abcdef"
    key_id = "mrk-0123456789abcdef0123456789abcdef"
  }
}

mock_resource "aws_apigatewayv2_api" {
  defaults = {
    id            = "f6g7h8i9j0"
    api_endpoint  = "https://f6g7h8i9j0.execute-api.us-east-1.amazonaws.com"
    execution_arn = "arn:aws:execute-api:us-east-1:123456789012:f6g7h8i9j0"
  }
}
