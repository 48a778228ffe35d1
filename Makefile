# SplitRec: split DeepFM over gRPC.
# `make demo` trains the reference job on generated data; `make test` runs the suite.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SPLITREC := $(VENV)/bin/splitrec
PROTO_FILES := $(wildcard proto/splitrec/v1/*.proto)
DATA_DIR ?= data
# Rows of generated ratings for the demo data set.
DEMO_RATINGS ?= 100000
ML1M ?=
NUM_SAMPLE ?= -1
# Which parties' CSVs (and job) `make data` and `make demo` mean: reference (split
# DeepFM), two-tasks (the reference data, MMoE predicting like and love), bst (a
# behaviour-sequence transformer over each user's history), census (UCI Adult,
# MMoE: ADULT=path/to/adult.data [ADULT_TEST=path/to/adult.test]) or three-party
# (alice, carol and bob; bob's fuse adds up the three DNN bases' outputs).
LAYOUT ?= reference
SEQUENCE_LENGTH ?= 4
ADULT ?=
ADULT_TEST ?=
LAYOUT_ARGS := --layout $(LAYOUT) --sequence-length $(SEQUENCE_LENGTH)
# The layout's parties: `make demo` starts each from $(LAYOUT_CONFIGS)/<party>.yaml.
LAYOUT_PARTIES := alice bob
ifeq ($(LAYOUT),bst)
LAYOUT_FILES := $(DATA_DIR)/alice_bst.csv $(DATA_DIR)/bob_bst.csv
LAYOUT_CONFIGS := configs/bst
else ifeq ($(LAYOUT),census)
LAYOUT_FILES := $(DATA_DIR)/alice_adult.csv $(DATA_DIR)/bob_adult.csv
LAYOUT_CONFIGS := configs/census
else ifeq ($(LAYOUT),two-tasks)
LAYOUT_FILES := $(DATA_DIR)/alice_ml1m.csv $(DATA_DIR)/bob_ml1m.csv
LAYOUT_CONFIGS := configs/two_tasks
LAYOUT_ARGS := --layout reference --sequence-length $(SEQUENCE_LENGTH)
else ifeq ($(LAYOUT),three-party)
LAYOUT_PARTIES := alice carol bob
LAYOUT_FILES := $(foreach p,$(LAYOUT_PARTIES),$(DATA_DIR)/$(p)_3p.csv)
LAYOUT_CONFIGS := configs/three_party
else
LAYOUT_FILES := $(DATA_DIR)/alice_ml1m.csv $(DATA_DIR)/bob_ml1m.csv
LAYOUT_CONFIGS := configs
endif

.PHONY: install schemas proto proto-check data data-generated certs demo demo-secure test test-quick \
	notebooks bench leakage privacy-frontier serve-bench \
	compose-config compose-up compose-down wheelhouse lint format clean docs

# An editable install of the package with its test and docs tools: the code
# runs from this checkout, under the one import name splitrec.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,docs,notebook,engine]"
	touch $@

install: $(VENV)/.installed

# Regenerates the committed gRPC stubs from proto/.
proto: install
	$(PY) -m grpc_tools.protoc -I proto --python_out=proto --grpc_python_out=proto \
		--pyi_out=proto $(PROTO_FILES)

# The configs' JSON Schema files, which the shipped configs name on their first
# line so that editors check them (a test fails when they are out of date).
schemas: install
	$(SPLITREC) schema party --out configs/schema/party.json
	$(SPLITREC) schema job --out configs/schema/job.json

# Fails when the committed stubs differ from what proto/ generates.
proto-check: install
	$(PY) -m tools.check_stubs

# Party CSVs from real MovieLens-1M: make data ML1M=path/to/ml-1m.zip (or folder),
# or make data ML1M=download to fetch it from GroupLens (checksum verified).
data: install
ifeq ($(LAYOUT),census)
ifeq ($(ADULT),)
	$(MAKE) data-generated
else
	$(SPLITREC) data census prepare --source $(ADULT) --out $(DATA_DIR) \
		$(if $(ADULT_TEST),--test $(ADULT_TEST))
endif
else ifeq ($(ML1M),)
	$(MAKE) data-generated
else ifeq ($(ML1M),download)
	$(SPLITREC) data movielens prepare --download --cache $(DATA_DIR)/raw \
		--out $(DATA_DIR) --num-sample $(NUM_SAMPLE) $(LAYOUT_ARGS)
else
	$(SPLITREC) data movielens prepare --source $(ML1M) --out $(DATA_DIR) \
		--num-sample $(NUM_SAMPLE) $(LAYOUT_ARGS)
endif

# The default data set: generated ml-1m-format files through the same preparation.
data-generated: install
ifeq ($(LAYOUT),census)
	$(SPLITREC) data census generate --out $(DATA_DIR)/generated-adult
	$(SPLITREC) data census prepare --source $(DATA_DIR)/generated-adult/adult.data \
		--test $(DATA_DIR)/generated-adult/adult.test --out $(DATA_DIR)
else
	$(SPLITREC) data movielens generate --out $(DATA_DIR)/generated-ml-1m \
		--num-ratings $(DEMO_RATINGS)
	$(SPLITREC) data movielens prepare --source $(DATA_DIR)/generated-ml-1m \
		--out $(DATA_DIR) --num-sample $(NUM_SAMPLE) $(LAYOUT_ARGS)
endif

# A development CA and certificates for alice, bob, carol and the coordinator in
# certs/ (an existing CA is kept). CERTS_HOSTS adds names or addresses:
# CERTS_HOSTS="--host alice=10.0.0.6".
# CERTS_PASSWORD_FILE protects every key with the password in that file.
CERTS_DIR ?= certs
CERTS_HOSTS ?=
CERTS_PASSWORD_FILE ?=
certs: install
	$(SPLITREC) certs --out $(CERTS_DIR) alice bob carol coordinator scorer $(CERTS_HOSTS) \
		$(if $(CERTS_PASSWORD_FILE),--password-file $(CERTS_PASSWORD_FILE))

demo: install
	@$(foreach f,$(LAYOUT_FILES),test -f $(f) &&) true || $(MAKE) data-generated
	@$(foreach i,$(LAYOUT_PARTIES) coordinator,test -f $(CERTS_DIR)/$(i).pem &&) true \
		|| $(MAKE) certs
	$(SPLITREC) demo --job $(LAYOUT_CONFIGS)/job.yaml \
		$(foreach p,$(LAYOUT_PARTIES),--party $(LAYOUT_CONFIGS)/$(p).yaml)

# The three-party job: alice and carol send their base outputs to bob.
demo-secure:
	$(MAKE) demo LAYOUT=three-party

# The suite runs its test files on up to 4 worker processes (one per core): a
# file's tests stay together on one worker, so its expensive fixtures are made
# once. Files are handed out in collection order (integration first), not
# most-tests-first: the long single-test files (the bench smoke run, the
# leakage report) would otherwise start last and run alone at the end.
# PYTEST_PARALLEL= runs everything in this process.
PYTEST_PARALLEL ?= --numprocesses auto --maxprocesses 4 --dist loadfile --no-loadscope-reorder

test: install
	$(PY) -m ruff check .
	$(PY) -m tools.check_stubs
	$(PY) -m pytest -q $(PYTEST_PARALLEL)

# Split vs centralized on this machine: prints a table, writes runs/bench/results.json.
bench: install
	$(PY) -m splitrec.bench $(BENCH_ARGS)

# What the split job leaks per privacy setting: label inference from gradients,
# model completion and feature inference next to validation AUC and its cost;
# writes runs/bench/leakage.json.
leakage: install
	$(PY) -m splitrec.bench.leakage $(LEAKAGE_ARGS)

# Each defense's privacy-utility frontier: a sweep of strengths, every attack on
# every point; writes runs/bench/frontier/ (frontier.json, a picture per attack)
# and prints the setting to pick per threat. Hours at the default 1M rows:
# FRONTIER_ARGS="--rows 100000 --epochs 2" for a quick look.
privacy-frontier: install
	$(PY) -m splitrec.bench.frontier $(FRONTIER_ARGS)

# Online scoring over mutual TLS: latency uncached and cached, throughput with
# 8 clients; writes runs/bench/serving.json.
serve-bench: install
	$(PY) -m splitrec.bench.serving $(SERVE_BENCH_ARGS)

# The documentation site, every link and anchor checked, into site/. The API
# reference, config reference and package diagram are generated as it builds.
docs: install
	$(PY) -m mkdocs build --strict --site-dir site

test-quick: install
	$(PY) -m pytest -q -m "not slow" $(PYTEST_PARALLEL)

# The example notebooks (examples/notebooks/), each run headless in a real
# Jupyter kernel on 20,000 generated ratings and 2 epochs.
notebooks: install
	$(PY) -m pytest -q tests/integration/test_notebooks.py

# Python wheels for the image, made on this host: SplitRec's own wheel and every
# wheel it needs, so the image build needs no network (an air-gapped site builds
# the same way).
wheels/.complete: pyproject.toml | install
	rm -rf wheels
	$(PY) -m pip wheel --quiet --wheel-dir wheels . "setuptools>=77"
	rm -f wheels/splitrec-*.whl
	touch $@

wheelhouse: wheels/.complete

# docker-compose: check the file offline; run the reference job in containers
# (a Docker engine, or podman where there is none: deploy/compose.sh).
compose-config:
	docker-compose config --quiet

compose-up: wheelhouse
	@test -f $(DATA_DIR)/alice_ml1m.csv -a -f $(DATA_DIR)/bob_ml1m.csv || $(MAKE) data-generated
	@test -f $(CERTS_DIR)/coordinator.pem || $(MAKE) certs
	SPLITREC_DATA=$(abspath $(DATA_DIR)) SPLITREC_CERTS=$(abspath $(CERTS_DIR)) \
		deploy/compose.sh job

compose-down:
	deploy/compose.sh down --remove-orphans

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean:
	rm -rf $(VENV) runs wheels .pytest_cache .ruff_cache
