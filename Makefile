# bpfnb — the two commands of the README are `make lab` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.setup-stamp
CLANG  ?= clang-19

.PHONY: setup lab test fixtures examples bundled-btf golden-btf bench lint clean fuzz ubpf-driver

# Idempotent: redone only when pyproject.toml changes.
$(STAMP): pyproject.toml scripts/system-deps.sh
	bash scripts/system-deps.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,lab]'
	touch $(STAMP)

setup: $(STAMP)

# as root (the development machines), JupyterLab must be told it may run; the shipped
# notebooks are saved without their outputs (the tree stays clean)
lab: setup
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --ip=127.0.0.1 $(if $(filter 0,$(shell id -u)),--allow-root) \
		--FileContentsManager.pre_save_hook=bpfnb.examples.strip_outputs \
		--ServerApp.kernel_websocket_connection_class=bpfnb.widgets.server.NoDelayKernelConnection

test: setup
	$(PY) -m pytest -q

# The drop tracer bpfnb ships (package data), built like the fixtures.
TRACER := bpfnb/data/drops.bpf.o
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_x86 -I/usr/include/$(shell uname -m)-linux-gnu

$(TRACER): bpfnb/data/bpf/drops.bpf.c bpfnb/data/bpf/drops_types.h
	$(CLANG) $(BPF_CFLAGS) -Ibpfnb/data/bpf -c $< -o $@

# The programs the notebooks open (package data, so they run without clang).
EX := bpfnb/data/examples
EXAMPLES := $(EX)/count_protocols.bpf.o $(EX)/count_protocols_nocheck.bpf.o \
	$(EX)/typecast_ok.bpf.o $(EX)/typecast.bpf.o $(EX)/trust.bpf.o $(EX)/trust_misuse.bpf.o

$(EX)/count_protocols.bpf.o: bpfnb/data/bpf/count_protocols.bpf.c
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@
$(EX)/count_protocols_nocheck.bpf.o: bpfnb/data/bpf/count_protocols.bpf.c
	$(CLANG) $(BPF_CFLAGS) -DFORGET_NULL_CHECK -c $< -o $@
$(EX)/typecast_ok.bpf.o: bpfnb/data/bpf/typecast.bpf.c bpfnb/data/bpf/drops_types.h
	$(CLANG) $(BPF_CFLAGS) -Ibpfnb/data/bpf -c $< -o $@
$(EX)/typecast.bpf.o: bpfnb/data/bpf/typecast.bpf.c bpfnb/data/bpf/drops_types.h
	$(CLANG) $(BPF_CFLAGS) -Ibpfnb/data/bpf -DTYPECAST -c $< -o $@
$(EX)/trust.bpf.o: bpfnb/data/bpf/trust.bpf.c
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@
$(EX)/trust_misuse.bpf.o: bpfnb/data/bpf/trust.bpf.c
	$(CLANG) $(BPF_CFLAGS) -DHELPER_MISUSE -c $< -o $@

examples: $(EXAMPLES)

# The kernel BTF bpfnb falls back on where /sys/kernel/btf/vmlinux is absent:
# generated from the live BTF (needs it), compiled with clang -g, .BTF kept.
BUNDLED := bpfnb/data/vmlinux-bundled.btf
bundled-btf: setup
	$(PY) scripts/make_bundled_btf.py bpfnb/data/kernel/vmlinux_bundled.h
	$(CLANG) -g -O2 -target bpf -x c -c bpfnb/data/kernel/vmlinux_bundled.h -o /tmp/bpfnb-bundled.o
	llvm-objcopy-19 --dump-section .BTF=$(BUNDLED) /tmp/bpfnb-bundled.o
	rm -f /tmp/bpfnb-bundled.o

# The running kernel's BTF beside the golden files (regenerated on the same kernel:
# BPFNB_UPDATE_GOLDEN=1 python -m pytest tests/verifier -m kernel)
golden-btf: setup
	$(PY) scripts/golden_btf.py

fixtures: $(TRACER) $(EXAMPLES)
	$(MAKE) -C tests/fixtures CLANG=$(CLANG)

bench: setup
	$(PY) -m benchmarks

# benchmarks/bench_vs_ubpf.py's timer of uBPF's interpreter, built against a uBPF you
# installed (UBPF=<its prefix>: include/ubpf.h, lib/libubpf.a); then run the benchmark
# with BPFNB_UBPF_DRIVER=build/ubpf_driver.
UBPF_DRIVER := build/ubpf_driver
ubpf-driver: benchmarks/ubpf_driver.c
	@test -n "$(UBPF)" || { echo "make ubpf-driver UBPF=<an installed uBPF prefix>"; exit 2; }
	mkdir -p $(dir $(UBPF_DRIVER))
	$(CC) -O2 -Wall -Wextra -I$(UBPF)/include -o $(UBPF_DRIVER) $< $(UBPF)/lib/libubpf.a -lm

# Mutated objects, BTF and instruction streams in a worker process (bpfnb/fuzz.py):
# FUZZ_MINUTES long, counts printed and written to fuzz-counts.json; exit 1 on anything bad.
FUZZ_MINUTES ?= 10
fuzz: setup
	$(PY) -m bpfnb.fuzz --minutes $(FUZZ_MINUTES) --json fuzz-counts.json

lint: setup
	$(VENV)/bin/ruff check bpfnb tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
