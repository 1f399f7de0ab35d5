# Terraform checks of infra/, included by the root Makefile (`include infra/infra.mk`).
#   make infra-test   fmt, init, validate, terraform test, offline plans, checkov (no network
#                     needed except for the one-time checkov install)

INFRA_CHECKOV_VERSION ?= 3.3.30
INFRA_PYTHON ?= python3

.venv/checkov/bin/checkov:
	$(INFRA_PYTHON) -m venv .venv/checkov
	.venv/checkov/bin/pip install --quiet --disable-pip-version-check "checkov==$(INFRA_CHECKOV_VERSION)"
	touch $@

.PHONY: infra-test
infra-test: .venv/checkov/bin/checkov
	CHECKOV=.venv/checkov/bin/checkov bash infra/check.sh
