# Sourced by infra/check.sh and infra/settings.sh: Terraform without network or AWS.
#   offline_terraform WORK   no version check, no prompts; the AWS provider from the filesystem
#                            mirror ($TF_PLUGIN_MIRROR, default /opt/tf-plugins) when it exists
#   offline_env              fake credentials and no shared config: a plan of new resources
#                            without refresh never needs to reach AWS

offline_terraform() {
  local work=$1 mirror="${TF_PLUGIN_MIRROR:-/opt/tf-plugins}"
  export TF_IN_AUTOMATION=1 TF_INPUT=0
  export CHECKPOINT_DISABLE=1 # no version check over the network
  if [ -d "$mirror" ]; then
    cat >"$work/terraform.rc" <<RC
provider_installation {
  filesystem_mirror {
    path = "$mirror"
  }
}
RC
    export TF_CLI_CONFIG_FILE="$work/terraform.rc"
  elif [ -n "${TF_CLI_CONFIG_FILE:-}" ] && [ ! -e "$TF_CLI_CONFIG_FILE" ]; then
    unset TF_CLI_CONFIG_FILE # a dangling setting only produces a warning
  fi
}

offline_env() {
  export AWS_ACCESS_KEY_ID=fake AWS_SECRET_ACCESS_KEY=fake AWS_REGION=us-west-2
  export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
  unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL
}
