variable "topology_file" {
  # Another file only for a rehearsal: scripts/deploy-emulator.sh gives a copy of the shipped
  # topology with short queue timeouts (a dead letter in seconds, not 5 x 180 s).
  description = "Path of the topology JSON. null means infra/topology.json (the file the Rust engine reads too)."
  type        = string
  default     = null

  validation {
    condition     = var.topology_file == null || can(jsondecode(file(var.topology_file)).regions)
    error_message = "topology_file must be a readable JSON file with a `regions` list (like infra/topology.json)."
  }
}

variable "account_id" {
  description = "AWS account id used to build ARNs. null: asked from STS (needs credentials). Set it for an offline plan."
  type        = string
  default     = null

  validation {
    condition     = var.account_id == null || can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id must be 12 digits (or null to ask STS)."
  }
}

variable "offline" {
  description = "Plan without credentials or network (skips the provider's credential, account and region checks). Never for apply."
  type        = bool
  default     = false
}

variable "artifacts_dir" {
  description = "Directory holding <function>/bootstrap.zip as `make build` writes them. null: <repo>/target/lambda."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "Retention of the functions' log groups."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, …, 365, …, 3653)."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrency of each function in each region; also the SQS event source mappings' maximum concurrency."
  type        = number
  default     = 5

  validation {
    condition     = var.reserved_concurrency >= 2 && var.reserved_concurrency <= 1000
    error_message = "reserved_concurrency must be 2..1000 (an SQS event source mapping needs a maximum concurrency of at least 2)."
  }
}

variable "memory_mb" {
  description = "Memory of each function."
  type        = number
  default     = 128
}

variable "log_level" {
  description = "Lambda's application log level of every function (its logging_config; the functions read it as AWS_LAMBDA_LOG_LEVEL)."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"], var.log_level)
    error_message = "log_level must be one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL."
  }
}

variable "alarm_email" {
  description = "If set, each region's alarm topic mails this address (the subscription must be confirmed)."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Deletion protection of the DynamoDB table and of the Cognito user pool. Turn off (and apply) before `terraform destroy`."
  type        = bool
  default     = true
}

variable "api_throttling_rate_limit" {
  description = "Steady requests per second each region's HTTP API (the front door) admits, over all routes and callers; above it callers get 429."
  type        = number
  default     = 50

  validation {
    condition     = var.api_throttling_rate_limit > 0
    error_message = "api_throttling_rate_limit must be positive."
  }
}

variable "api_throttling_burst_limit" {
  description = "Burst of requests each region's HTTP API admits above the rate limit."
  type        = number
  default     = 100

  validation {
    condition     = var.api_throttling_burst_limit >= 1 && floor(var.api_throttling_burst_limit) == var.api_throttling_burst_limit
    error_message = "api_throttling_burst_limit must be a positive whole number."
  }
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

# --- Deploying on an AWS API emulator (scripts/deploy-emulator.sh, `make deploy-emulator`) ----
# On AWS leave all of these at their defaults. Each emulator_lacks_* switch turns off one thing
# an emulator (moto 5.2.x in server mode) does not do, and replaces it with the nearest thing
# it does; the comment says what breaks without it. MiniStack 1.5.33, which `make
# deploy-emulator` uses, needs none of them.

variable "endpoint_url" {
  description = "An AWS API emulator's URL (e.g. http://127.0.0.1:4566): every service the deployment uses is called there. null on AWS."
  type        = string
  default     = null

  validation {
    condition     = var.endpoint_url == null || can(regex("^https?://", var.endpoint_url))
    error_message = "endpoint_url must be an http(s) URL, or null on AWS."
  }
}

variable "emulator_lacks_kms_replicas" {
  # moto's ReplicateKey ignores the replica's key policy (the replica keeps the primary's),
  # and the provider waits until the policy it asked for shows up on the replica: apply hangs
  # on aws_kms_replica_key. true: each other region gets a single-region key with the same
  # key policy instead. (The function roles' Key statement still names the replica's ARN; the
  # emulator does not evaluate IAM.)
  description = "Emulator only: a regional KMS key in each non-primary region instead of a replica of the multi-region key."
  type        = bool
  default     = false
}

variable "emulator_lacks_global_tables" {
  # moto's DynamoDB has no global tables: it ignores the replicas of UpdateTable, and the
  # provider waits for replicas that never become ACTIVE. true: no replicas; each other region
  # gets its own `moebi` table with the same keys, stream, TTL, PITR and encryption, and
  # moebi's engine copies writes between the regions' tables from their streams, as global
  # tables would (src/engine/replicator/, emulator mode).
  description = "Emulator only: one table per region (no global-table replicas)."
  type        = bool
  default     = false
}

variable "emulator_lacks_lambda_invoke" {
  # moto runs no Lambda function without Docker: a rule whose target is a function makes
  # PutEvents fail with a 500 (moto's EventBridge has no Lambda targets), and with an SQS event
  # source mapping every SendMessage makes moto receive the queue's messages and try to run
  # the function in Docker; that fails, and each try counts as a receive, so the messages'
  # receive counts climb towards the DLQ with no handler run. true: the rules that target
  # moebi-reply or stock-status target a stand-in queue `moebi-<function>` (redrive to
  # `moebi-<function>-dlq` after the 3 attempts Lambda makes at an asynchronous event), and no
  # event source mappings are made: `moebi pump` plays the event source mappings and the
  # asynchronous invocations (as after `moebi setup`). The functions are still created (their
  # code is never run there).
  description = "Emulator only: stand-in queues instead of Lambda targets, and no event source mappings."
  type        = bool
  default     = false
}

variable "emulator_lacks_sqs_redrive_allow_policy" {
  # moto 5.2.x does not keep a queue's RedriveAllowPolicy attribute, and the provider waits for
  # it to read back: apply hangs on aws_sqs_queue_redrive_allow_policy. true: the DLQs get no
  # redrive-allow policy (any queue of the account may redrive into them).
  description = "Emulator only: no redrive-allow policies on the DLQs."
  type        = bool
  default     = false
}

variable "evacuated" {
  # Losing a region (README, "Losing a region"): the events of everyone homed in an evacuated
  # region (its participants, bots and stores) go to its standby as well, the next region of
  # topology.json (the last region's is the first), and the standby's functions apply them (a
  # function serves its own region's residents and those of the region it stands by for).
  # Nothing is taken away, so no event falls between two rules while they change; effects are
  # keyed by event ids, so an event applied in both regions is applied once. Remove the region
  # from the list once it is back: what its queues held drains there.
  # moebi's Topology::evacuated derives the same rules (tests/infra.rs compares them).
  description = "Regions whose residents' events also go to their standby (the next region) while they are down."
  type        = list(string)
  default     = []
}
