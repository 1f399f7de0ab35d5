# The Lambda benchmark (benches/lambda_bench.py), included by the root Makefile after its
# variables (VENV, PYTHON, CARGO, MOTO, LAMBDA, LAMBDA_PATH, FUNCTIONS, TARGET_DIR):
#
#   include benches/bench.mk
#   bench: bench-lambda          # beside the engine's `cargo bench`
#
#   make bench-lambda            # full run: dynoxide, then moto for reference (~10 min)
#   make bench-lambda QUICK=1    # smoke run (~2 min)
#   make bench-lambda BACKENDS=dynoxide   # without the moto reference
#   make bench-lambda LATENCY_MS=0,5,10   # warm records/s at these latencies per AWS call (default 0,5)
#
# The Python peers (benches/python/) run under the real runtime interface client, awslambdaric,
# with boto3, in .venv/bench; moto (.venv/aws) serves EventBridge, and DynamoDB for reference.
# Every function of FUNCTIONS is measured: the event functions per batch, the front door (an
# HTTP API function) per request (events/front-door/send.json, a fresh id each).

BENCH_PY             := $(VENV)/bench/bin/python
BOTO3_VERSION        := 1.44.5
BOTOCORE_VERSION     := 1.44.5
AWSLAMBDARIC_VERSION := 4.2.2

$(BENCH_PY):
	$(PYTHON) -m venv $(VENV)/bench
	$(VENV)/bench/bin/pip install --quiet --disable-pip-version-check \
		boto3==$(BOTO3_VERSION) botocore==$(BOTOCORE_VERSION) awslambdaric==$(AWSLAMBDARIC_VERSION)

.PHONY: bench-lambda
bench-lambda: $(MOTO) $(LAMBDA) $(BENCH_PY)
	PATH="$(LAMBDA_PATH)" $(CARGO) lambda build --profile function $(foreach f,$(FUNCTIONS),-p $(f))
	$(CARGO) build --quiet --bin moebi
	$(PYTHON) benches/lambda_bench.py --target-dir "$(TARGET_DIR)" --python "$(BENCH_PY)" \
		--moto "$(MOTO)" $(if $(QUICK),--quick) $(if $(BACKENDS),--backends $(BACKENDS)) \
		$(if $(LATENCY_MS),--latency-ms $(LATENCY_MS))
