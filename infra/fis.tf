# The drill on AWS (README, "Losing a region"; scripts/drill.sh): per region, an AWS Fault
# Injection Service experiment template that pauses the replication between that region's
# replica of the global table and the others (aws:dynamodb:global-table-pause-replication),
# and the role FIS runs it with. Not on an emulator: none serves FIS (the rehearsal's MiniStack
# has no FIS, and replicates synchronously inside PutItem; docs/design.md names the gap).

locals {
  fis_enabled = var.endpoint_url == null
}

resource "aws_iam_role" "fis" {
  count       = local.fis_enabled ? 1 : 0
  name        = "moebi-fis-drill"
  description = "moebi: AWS FIS experiments of the region drill (pausing the global table's replication)"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "fis.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    }]
  })
}

# What the action needs (FIS actions reference): it pauses replication by putting a resource
# policy that denies the replication service on the replica, and deletes it at the end.
resource "aws_iam_role_policy" "fis" {
  count = local.fis_enabled ? 1 : 0
  name  = "pause-replication"
  role  = aws_iam_role.fis[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "PauseReplication"
        Effect   = "Allow"
        Action   = ["dynamodb:PutResourcePolicy", "dynamodb:DeleteResourcePolicy", "dynamodb:GetResourcePolicy", "dynamodb:DescribeTable"]
        Resource = [for r in local.regions : local.arn[r].table]
      },
      {
        Sid      = "FindTables"
        Effect   = "Allow"
        Action   = ["tag:GetResources"]
        Resource = "*"
      },
    ]
  })
}
