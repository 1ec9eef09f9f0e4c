# The two commands: `make demo` and `make test`. See README.md.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: demo test venv lint messages clean bench

$(BIN)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $@

venv: $(BIN)/.installed

demo: venv
	@env -u DATABASE_URL -u CELERY_BROKER_URL $(BIN)/python manage.py migrate --noinput -v0
	@env -u DATABASE_URL -u CELERY_BROKER_URL $(BIN)/python manage.py seed_demo
	@echo "Portail : http://127.0.0.1:$(PORT)/  (Ctrl-C pour arrêter)"
	@env -u DATABASE_URL -u CELERY_BROKER_URL STAFF_REQUIRE_PHISHING_RESISTANT=$${STAFF_REQUIRE_PHISHING_RESISTANT:-false} $(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

test:
	@bash scripts/test

# The benchmarks of docs/operations.md ("Benchmarks"): as root, alone on the machine, minutes
# each. `make bench BENCH_ARGS=--quick` for the smoke runs.
bench: venv
	@bash scripts/install-deps
	$(BIN)/python scripts/bench/pipeline.py $(BENCH_ARGS)
	$(BIN)/python scripts/bench/smtp.py $(BENCH_ARGS)
	$(BIN)/python scripts/bench/webmail.py $(BENCH_ARGS)
	$(BIN)/python scripts/bench/imap.py $(BENCH_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

messages: venv
	$(BIN)/python manage.py makemessages -l en --no-obsolete --ignore ".venv/*" --ignore "var/*"
	$(BIN)/python manage.py compilemessages --ignore ".venv/*"

clean:
	rm -rf $(VENV) var
