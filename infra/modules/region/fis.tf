# The drill on AWS (root fis.tf): pausing the replication between this region's replica of the
# global table and the others, for 10 minutes (or until the experiment is stopped). Start it
# with `aws fis start-experiment --experiment-template-id <id> --region <region>`; the ids are
# in output "drill".

resource "aws_fis_experiment_template" "pause_replication" {
  count       = var.shared.fis_enabled ? 1 : 0
  description = "moebi drill: pause the replication of the global table's replica in ${var.region}"
  role_arn    = var.shared.fis_role_arn

  stop_condition {
    source = "none"
  }

  action {
    name      = "pause-replication"
    action_id = "aws:dynamodb:global-table-pause-replication"

    parameter {
      key   = "duration"
      value = "PT10M"
    }

    target {
      key   = "Tables"
      value = "replica"
    }
  }

  target {
    name           = "replica"
    resource_type  = "aws:dynamodb:global-table"
    resource_arns  = ["arn:${var.shared.partition}:dynamodb:${var.region}:${var.shared.account_id}:table/${var.shared.table_name}"]
    selection_mode = "ALL"
  }

  tags = {
    Name = "moebi-pause-replication-${var.region}"
  }
}
