# Two commands: `make demo` runs the gateway on simulators, `make test` runs every check.
# Each installs what it needs first (a virtualenv in .venv with the project and its dev tools).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
RUNTIME_STAMP := $(VENV)/.runtime-stamp
PORT   ?= 8000
# GStreamer's RTSP server under Debian's python3: the RTSP camera simulator
GSTREAMER := python3-gi gir1.2-gst-rtsp-server-1.0 gir1.2-gst-plugins-base-1.0 gstreamer1.0-rtsp \
	gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly
# Aravis: the GigE Vision camera simulator, the typelib, and what PyGObject builds with
ARAVIS := aravis-tools gir1.2-aravis-0.8 libgirepository1.0-dev libcairo2-dev pkg-config \
	python3-dev meson ninja-build
GIGE_STAMP := $(VENV)/.gige-stamp
# Roboflow's CLI, driven by the tests as users run it; a virtualenv of its own, since it pins
# an older pydantic than the gateway's.
RF_CLI_VENV := .venv-roboflow-cli
RF_CLI      := $(RF_CLI_VENV)/bin/inference
RF_CLI_PIN  := inference-cli==1.8.3
# pysparkplug, the Sparkplug B host application the tests check the edge node against; its own
# virtualenv, since it pins paho-mqtt < 2 (the gateway is on paho 2).
SPB_VENV := .venv-sparkplug
SPB_HOST := $(SPB_VENV)/bin/python
SPB_PIN  := pysparkplug==0.6.1
# System packages the tests use: a Mosquitto broker (started per test on a free port) and
# Debian's Chromium (driven by Playwright in the dashboard's browser test), curl (Instill's
# documented calls are sent with it) and PostgreSQL's server (a private cluster per test).
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo run test system-packages lint typecheck pytest bench model clean

$(RUNTIME_STAMP): pyproject.toml  ## the gateway alone: what the demo needs
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUNTIME_STAMP)

$(STAMP): $(RUNTIME_STAMP) pyproject.toml  ## and the dev tools the tests need
	$(BIN)/python -m pip install --quiet -e ".[dev,ocr]"
	touch $(STAMP)

$(GIGE_STAMP): $(STAMP) | system-packages  # PyGObject for Aravis (builds from source)
	$(BIN)/python -m pip install --quiet -e ".[dev,ocr,gige]"
	touch $(GIGE_STAMP)

$(RF_CLI):
	$(PYTHON) -m venv $(RF_CLI_VENV)
	$(RF_CLI_VENV)/bin/python -m pip install --quiet "$(RF_CLI_PIN)"

$(SPB_HOST):
	$(PYTHON) -m venv $(SPB_VENV)
	$(SPB_VENV)/bin/python -m pip install --quiet "$(SPB_PIN)"

demo: $(RUNTIME_STAMP)  ## the whole gateway on simulators (Ctrl-C stops); `make demo PORT=8001`
	$(BIN)/gateway demo --port $(PORT)

run: $(RUNTIME_STAMP)   ## the gateway alone, on the embedded default config
	$(BIN)/gateway run --port $(PORT)

test: system-packages lint typecheck pytest  ## ruff, import contracts, mypy --strict, pytest

system-packages:
	@missing=""; \
	if [ ! -x /usr/sbin/mosquitto ] && ! command -v mosquitto >/dev/null 2>&1; then missing="mosquitto"; fi; \
	if ! command -v chromium >/dev/null 2>&1; then missing="$$missing chromium"; fi; \
	if ! command -v curl >/dev/null 2>&1; then missing="$$missing curl"; fi; \
	if ! /usr/bin/python3 simulators/rtsp_server.py --check 2>/dev/null; then \
	  missing="$$missing $(GSTREAMER)"; fi; \
	if ! command -v arv-fake-gv-camera-0.8 >/dev/null 2>&1 || \
	   ! ls /usr/lib/*/girepository-1.0/Aravis-0.8.typelib >/dev/null 2>&1 || \
	   ! pkg-config --exists gobject-introspection-1.0 cairo 2>/dev/null; then \
	  missing="$$missing $(ARAVIS)"; fi; \
	if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then missing="$$missing postgresql"; fi; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing (MQTT broker, browser, curl, RTSP server, GigE camera, PostgreSQL for the tests)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) $(RF_CLI) $(SPB_HOST) $(GIGE_STAMP)
	$(BIN)/pytest

bench: $(STAMP)  ## benchmarks, by hand (not part of the tests)
	$(BIN)/python -m bench.http_trigger
	$(BIN)/python -m bench.mqtt_trigger
	$(BIN)/python -m bench.modbus_trigger
	$(BIN)/python -m bench.opcua_trigger

model: $(STAMP)  ## retrain the demo's part classifier
	$(BIN)/python -m simulators.train_part_classifier

clean:
	rm -rf $(VENV) $(RF_CLI_VENV) $(SPB_VENV) .mypy_cache .ruff_cache .pytest_cache artifacts
