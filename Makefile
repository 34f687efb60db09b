# Developer entry points; `make demo` and `make test` work from a fresh clone.
# The control-plane binaries are built once per machine into ~/.cache/ecs-operator (first time
# ~15 min on 2 cores); the sandbox's state lives in ~/.local/state/ecs-operator/sandbox.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ECS := $(BIN)/ecs-operator
KUBECTL := $(BIN)/kubectl
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: venv controlplane up down demo test unit e2e lint

venv: $(INSTALLED)

$(INSTALLED): pyproject.toml
	@echo "==> installing ecs-operator and its test dependencies into $(VENV)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check --progress-bar off -e '.[test]'
	@touch $@

controlplane: venv
	@echo "==> control-plane binaries (built once per machine, then cached)"
	$(ECS) sandbox build

up: controlplane
	@echo "==> starting the sandbox"
	$(ECS) sandbox up

down:
	@if [ -x $(ECS) ]; then $(ECS) sandbox down; else echo "nothing to stop (no $(VENV))"; fi

# The sandbox with the operator and the ECS API as its components (`sandbox down` stops them), the
# examples applied with kubectl, and the ECS API answering about them with aws-cli.
demo: controlplane
	@echo "==> starting the sandbox, the operator and the ECS API"
	$(ECS) sandbox up --operator --api
	@set -euo pipefail; \
	eval "$$($(ECS) sandbox env)"; \
	echo "==> applying examples/"; $(KUBECTL) apply -R -f examples/; \
	echo "==> waiting for the nginx-demo task to run and the services to complete their rollouts"; \
	$(KUBECTL) wait --for=jsonpath='{.status.lastStatus}'=RUNNING tasks.ecs.operator.dev/nginx-demo --timeout=60s || true; \
	$(KUBECTL) wait --for=jsonpath='{.status.rolloutState}'=COMPLETED services.ecs.operator.dev --all -A --timeout=90s || true; \
	echo "==> kubectl get ecs -A"; \
	$(KUBECTL) get ecs -A || echo "(\`$(ECS) sandbox status\` shows the operator's log file)"; \
	echo "==> the same service through the ECS API: aws ecs describe-services --cluster default --services web-app"; \
	$(BIN)/aws ecs describe-services --cluster default --services web-app \
	  --query 'services[].{service:serviceName,status:status,desired:desiredCount,running:runningCount,rollout:deployments[0].rolloutState}' \
	  --output table; \
	echo; \
	echo "Look further:"; \
	echo "  eval \"\$$($(ECS) sandbox env)\"    # KUBECONFIG, kubectl v1.37 + helm on PATH, AWS_* for the ECS API"; \
	echo "  kubectl get ecs,all -A"; \
	echo "  aws ecs list-services --cluster default"; \
	echo "  $(ECS) sandbox status          # components (operator, api), PIDs, logs"; \
	echo "Stop: make down"

# One pytest run: the e2e fixture starts (and stops) a sandbox of its own, beside any `make up` one.
test: controlplane
	@echo "==> unit and end-to-end tests"
	@$(BIN)/pytest tests/unit tests/e2e $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; exit $$rc

# Static checks (CI runs them before the tests), configured in pyproject.toml: ruff, mypy with the pydantic
# plugin (the package and tests/unit), and the import contracts (the pure core imports no kopf, Kubernetes
# client, handlers or adapters; handlers reach the API through adapters). All three run (one finding does not
# hide another's); any failure fails the target.
lint: venv
	@rc=0; \
	echo "==> ruff check operator/ecs_operator"; $(BIN)/ruff check operator/ecs_operator || rc=1; \
	echo "==> mypy"; $(BIN)/mypy || rc=1; \
	echo "==> lint-imports"; $(BIN)/lint-imports --no-cache || rc=1; \
	exit $$rc

unit: venv
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

e2e: controlplane
	$(BIN)/pytest tests/e2e $(PYTEST_ARGS)
