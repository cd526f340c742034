# SPDX-License-Identifier: MIT
# ibsnap top-level build.  Everything lands in $(BUILD) (default build/);
# SAN=1 builds with AddressSanitizer + UBSan (make test does both).

BUILD ?= build
SAN ?= 0
CC ?= gcc

CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g -fPIC \
	  -fvisibility=hidden -pthread -Iinclude -Ifake-hca
LDFLAGS := -pthread
ifeq ($(SAN),1)
CFLAGS += -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
	  -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
else
CFLAGS += -O2
endif

# Debian packages the build, the tests and the benchmarks use.
DEB_PKGS := gcc make pkg-config rdma-core ibverbs-providers libibverbs-dev \
	librdmacm-dev ibverbs-utils perftest rdmacm-utils libucx-dev ucx-utils \
	openmpi-bin libopenmpi-dev libfabric-bin \
	libev-dev libcmocka-dev criu qemu-system-x86 valgrind iproute2

FAKE_SRCS := $(sort $(wildcard fake-hca/*.c))
FAKE_OBJS := $(FAKE_SRCS:%.c=$(BUILD)/obj/%.o)
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%)
INTEG_SRCS := $(sort $(wildcard tests/integration/*.c))
INTEG_BINS := $(INTEG_SRCS:tests/integration/%.c=$(BUILD)/tests/integration/%)
BENCH_SRCS := $(sort $(wildcard bench/*.c))
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bin/%)

LIBFAKE := $(BUILD)/lib/libfakehca.so
LIBFAKE_A := $(BUILD)/lib/libfakehca.a

.PHONY: all deps build test test-host test-host-one bench-fake demo demo-lab clean \
	format

all: deps
	@$(MAKE) --no-print-directory build

build: $(LIBFAKE) $(LIBFAKE_A) $(UNIT_BINS) $(INTEG_BINS) $(BENCH_BINS)

# Install what is missing (apt-get update once, then one install).
deps:
	@missing=""; for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${db:Status-Status}' $$p 2>/dev/null | \
			grep -qx installed || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "make deps: installing$$missing"; \
		[ "$$(id -u)" = 0 ] || { echo "make deps: need root for apt-get" >&2; exit 1; }; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -q --no-install-recommends $$missing; \
	fi
# lab tier (issue 5): the guest kernel and initramfs, fetched once
	@tests/lab/guest.sh prepare

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIBFAKE): $(FAKE_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared $(LDFLAGS) -Wl,-soname,libfakehca.so -o $@ $^ -libverbs

$(LIBFAKE_A): $(FAKE_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# Unit tests link the static archive: they may reach internals.
$(BUILD)/tests/unit/%: tests/unit/%.c $(LIBFAKE_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $< -o $@ $(LDFLAGS) $(LIBFAKE_A) -lcmocka -libverbs

# Integration tests link the shared library, as programs do.
$(BUILD)/tests/integration/%: tests/integration/%.c tests/integration/itest.h $(LIBFAKE)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $< -o $@ $(LDFLAGS) -L$(BUILD)/lib \
		-Wl,-rpath,'$$ORIGIN/../../lib' -lfakehca -libverbs

$(BUILD)/bin/%: bench/%.c tests/integration/itest.h $(LIBFAKE)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(LDFLAGS) -L$(BUILD)/lib \
		-Wl,-rpath,'$$ORIGIN/../lib' -lfakehca -libverbs -lm

# One tier set on one build (normal or sanitized).
test-host-one: build
	@tests/run-tests.sh $(BUILD)

# Host tiers, normal then ASan+UBSan; the last line is the grand total.
# The sanitized build goes to ASAN_BUILD; both compile with -j$(JOBS).
ASAN_BUILD ?= $(BUILD)/asan
JOBS ?= $(shell nproc)
test-host: deps
	@$(MAKE) --no-print-directory -j$(JOBS) BUILD=$(BUILD) SAN=0 build
	@$(MAKE) --no-print-directory -j$(JOBS) BUILD=$(ASAN_BUILD) SAN=1 build
	@tests/run-tests.sh $(BUILD) $(ASAN_BUILD)

bench-fake: all
	@$(BUILD)/bin/bench_fake docs/perf-fake-hca.md

# checkpoint cost (issue 6) on the fake HCA; IBSNAP_BENCH_LAB=1 adds rxe0
.PHONY: bench-ckpt
bench-ckpt: all
	@bench/bench_ckpt.sh $(BUILD) docs/checkpoint.md

demo: all
	@bench/demo.sh $(BUILD)

# the same ping-pong in the lab guest, where CRIU works: dumped with --stop
# in one boot, restarted from its image after a reboot
demo-lab: deps
	@$(MAKE) --no-print-directory BUILD=build SAN=0 build
	@rm -rf build/demo-lab && mkdir -p build/demo-lab
	@tests/lab/guest.sh run --rw build/demo-lab -- \
		bench/demo.sh build dump build/demo-lab
	@echo "== the guest reboots"
	@tests/lab/guest.sh run --rw build/demo-lab -- \
		bench/demo.sh build restore build/demo-lab

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

-include $(FAKE_OBJS:.o=.d)

# ---- verbs-shim, virt-ids and the ibsnap CLI (issue 4) ----
SHIM_SRCS := $(sort $(wildcard verbs-shim/*.c virt-ids/*.c drain/*.c \
	rebuild/*.c ucx-bridge/*.c))
SHIM_OBJS := $(SHIM_SRCS:%.c=$(BUILD)/obj/%.o)
VID_OBJS := $(filter $(BUILD)/obj/virt-ids/%,$(SHIM_OBJS))
CLI_SRCS := $(sort $(wildcard cli/*.c))
SHIM_TEST_SRCS := $(sort $(wildcard tests/shim/*.c))
SHIM_TEST_BINS := $(SHIM_TEST_SRCS:tests/shim/%.c=$(BUILD)/tests/shim/%)
# MPI programs (tests/shim/mpi_*.c) only where Open MPI's headers are
MPI_FLAGS := $(shell pkg-config --cflags --libs ompi-c 2>/dev/null)
SHIM_TEST_BINS := $(if $(MPI_FLAGS),$(SHIM_TEST_BINS),$(filter-out \
	$(BUILD)/tests/shim/mpi_%,$(SHIM_TEST_BINS)))
LIBSHIM := $(BUILD)/lib/libibsnap.so
IBSNAP := $(BUILD)/bin/ibsnap
# a sanitized shim needs the ASan runtime first in LD_PRELOAD: ibsnap run adds it
CLI_CFLAGS := $(if $(filter 1,$(SAN)),-DISN_ASAN_RT='"$(shell $(CC) -print-file-name=libasan.so)"')

build: $(LIBSHIM) $(IBSNAP) $(SHIM_TEST_BINS)

$(LIBSHIM): $(SHIM_OBJS) verbs-shim/libibsnap.map
	@mkdir -p $(dir $@)
	$(CC) -shared $(LDFLAGS) -Wl,-soname,libibsnap.so \
		-Wl,--version-script=verbs-shim/libibsnap.map -o $@ $(SHIM_OBJS) -ldl

$(IBSNAP): $(CLI_SRCS) $(wildcard cli/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CLI_CFLAGS) $(CLI_SRCS) -o $@ $(LDFLAGS)

# ibsnap's CRIU plugin (pre-dumps of a job that still maps uverbs), loaded
# by criu itself: never sanitized, its descriptor visible
CRIU_PLUGIN := $(BUILD)/lib/criu/ibsnap_uverbs.so
build: $(CRIU_PLUGIN)
$(CRIU_PLUGIN): criu-plugin/uverbs_vma.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -fsanitize% -fno-sanitize%,$(CFLAGS)) \
		-fvisibility=default -shared $< -o $@

$(BUILD)/tests/unit/test_virt_ids: tests/unit/test_virt_ids.c $(VID_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $^ -o $@ $(LDFLAGS) -lcmocka

$(BUILD)/tests/unit/test_wq: tests/unit/test_wq.c $(BUILD)/obj/verbs-shim/wq.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $^ -o $@ $(LDFLAGS) -lcmocka

# The checkpoint stream test drives ranks running under the shim and gives
# fake nodes new incarnations itself (fab_node_reincarnate, static archive).
$(BUILD)/tests/integration/ckpt_stream: tests/integration/ckpt_stream.c \
		$(wildcard tests/integration/ck*.h) $(LIBFAKE_A) $(LIBSHIM)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $< -o $@ $(LDFLAGS) $(LIBFAKE_A) -libverbs -ldl

# Programs tests/shim/*.sh run under ibsnap run: plain verbs programs.
$(BUILD)/tests/shim/%: tests/shim/%.c tests/shim/shimtest.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(LDFLAGS) -libverbs -lcmocka

$(BUILD)/tests/shim/mpi_%: tests/shim/mpi_%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(LDFLAGS) $(MPI_FLAGS)

-include $(SHIM_OBJS:.o=.d)
# ---- end of issue 4 block ----

# ---- lab tier: Soft-RoCE and CRIU in a QEMU guest (issue 5) ----
# tests/lab/guest.sh boots the guest; make deps fetches its kernel.
DEB_PKGS += busybox-static cpio kmod xz-utils zstd
LAB_SRCS := $(sort $(wildcard tests/lab/*.c))
LAB_BINS := $(LAB_SRCS:tests/lab/%.c=$(BUILD)/tests/lab/%)

build: $(LAB_BINS)

# plain verbs programs, as the shim's clients are
$(BUILD)/tests/lab/%: tests/lab/%.c $(wildcard tests/lab/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(LDFLAGS) -libverbs

.PHONY: test-lab bench-shim

# host tiers (normal, then ASan+UBSan), then the lab tier; one total
test: deps
	@$(MAKE) --no-print-directory -j$(JOBS) BUILD=$(BUILD) SAN=0 build
	@$(MAKE) --no-print-directory -j$(JOBS) BUILD=$(ASAN_BUILD) SAN=1 build
	@tests/run-tests.sh --lab $(BUILD) $(BUILD) $(ASAN_BUILD)

test-lab: deps
	@$(MAKE) --no-print-directory BUILD=build SAN=0 build
	@tests/run-tests.sh --lab build

# native vs shim on rxe0 in one boot, shim instructions on the fake HCA
bench-shim: deps
	@$(MAKE) --no-print-directory BUILD=build SAN=0 build
	@tests/lab/bench.sh build build/bench-shim.md
	@bench/splice.sh --wrap docs/perf.md bench-shim build/bench-shim.md

# downtime of (a) to disk, (b) staged, (c) pre-dump + staged against the
# job's memory (64, 256 MiB per rank), rxe0 and the fake HCA, in the lab
# guest (issue 11; two boots): the table in docs/checkpoint.md
.PHONY: bench-downtime
bench-downtime: deps
	@$(MAKE) --no-print-directory BUILD=build SAN=0 build
	@tests/lab/bench_downtime.sh build docs/checkpoint.md

# ucx_perftest native vs shim on rxe0 in one boot, the MPI job's checkpoint
# phases (docs/ucx.md)
.PHONY: bench-ucx
bench-ucx: deps
	@$(MAKE) --no-print-directory BUILD=build SAN=0 build
	@tests/lab/bench_ucx.sh build docs/ucx.md
# ---- end of lab tier block ----

# ---- coordinator (ibsnapd), its client in libibsnap.so, the CLI (issue 6) ----
COORD_WIRE_SRCS := coord/proto.c coord/proto_msg.c coord/net.c coord/wfault.c
COORD_LIB_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(COORD_WIRE_SRCS) \
	coord/client.c coord/client_ckpt.c coord/client_pmix.c)
COORDD_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(COORD_WIRE_SRCS) \
	$(sort $(wildcard coord/d_*.c)))
IBSNAPD := $(BUILD)/bin/ibsnapd
COORD_TEST_BINS := $(BUILD)/tests/coord/coord_peer

build: $(IBSNAPD) $(COORD_TEST_BINS)

# the coordinator client rides in libibsnap.so (the recipe expands SHIM_OBJS)
SHIM_OBJS += $(COORD_LIB_OBJS)
$(LIBSHIM): $(COORD_LIB_OBJS)

$(IBSNAPD): $(COORDD_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDFLAGS) -lev

CLI_SRCS += $(COORD_WIRE_SRCS)
$(IBSNAP): $(COORD_WIRE_SRCS) $(wildcard coord/*.h)
$(IBSNAP): CFLAGS += -Icoord
$(IBSNAP): LDFLAGS += -lev

# unit tests of the wire code (test_coord_wire runs bin/ibsnapd)
$(BUILD)/tests/unit/test_coord_%: tests/unit/test_coord_%.c \
		$(patsubst %.c,$(BUILD)/obj/%.o,$(COORD_WIRE_SRCS)) | $(IBSNAPD)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -Icoord $(filter %.c %.o,$^) -o $@ $(LDFLAGS) -lcmocka

# the CLI's record of a tree's files on tmpfs (cli/tmpfs.c)
$(BUILD)/tests/unit/test_tmpfs: tests/unit/test_tmpfs.c cli/tmpfs.c cli/proctree.c cli/cli.h \
		$(patsubst %.c,$(BUILD)/obj/%.o,$(COORD_WIRE_SRCS))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -Icoord -Icli $(filter %.c %.o,$^) -o $@ $(LDFLAGS) -lcmocka

$(BUILD)/tests/coord/%: tests/coord/%.c $(COORD_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Icoord $^ -o $@ $(LDFLAGS)

-include $(COORDD_OBJS:.o=.d) $(COORD_LIB_OBJS:.o=.d)
# ---- end of issue 6 block ----

# ---- scale: the coordinator's load generator, make bench (issue 9) ----
COORD_WIRE_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(COORD_WIRE_SRCS))
$(BUILD)/bin/coord_load: bench/coord_load.c $(COORD_WIRE_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Icoord $^ -o $@ $(LDFLAGS)

DEB_PKGS += gnuplot-nox libpmix-dev
# the exchange through PMIx (coord/client_pmix.c: libpmix by dlopen)
PMIX_CFLAGS := $(shell pkg-config --cflags pmix 2>/dev/null)
$(BUILD)/obj/coord/client_pmix.o: CFLAGS += $(PMIX_CFLAGS) \
	$(if $(PMIX_CFLAGS),-DISN_HAVE_PMIX)
.PHONY: bench bench-scale bench-sweep
# the coordinator at scale, simulated ranks (host only, a few minutes)
bench-scale: all
	@bench/bench_scale.sh $(BUILD) docs/perf.md

# one process's checkpoint vs QPs, MRs, registered memory (fake HCA)
bench-sweep: all
	@bench/bench_sweep.sh $(BUILD) docs/perf.md

# Every benchmark, each rewriting its part of docs/perf.md or its own doc
# (docs/perf-fake-hca.md, docs/checkpoint.md, docs/ucx.md); the lab ones
# boot the guest one at a time.  All run; the status says if any failed.
BENCHES := bench-fake bench-ckpt bench-sweep bench-scale bench-shim \
	bench-ucx bench-downtime
bench: deps
	@failed=; for b in $(BENCHES); do echo "== make $$b"; \
		$(MAKE) --no-print-directory $$b || failed="$$failed $$b"; \
	done; [ -z "$$failed" ] || { echo "make bench: failed:$$failed" >&2; \
		exit 1; }
# ---- end of issue 9 block ----

# ---- reliability (issue 10): libFuzzer targets, the soak ----
# The fuzz targets are built with clang's libFuzzer and ASan+UBSan whatever
# SAN says; tests/coord/fuzz.sh runs them briefly in the host tier, make
# fuzz longer (FUZZ_SECS per target); make soak runs the long ckpt_stream.
DEB_PKGS += clang libclang-rt-dev
FUZZ_CC ?= clang
FUZZ_SECS ?= 300
# (proto_msg.c names messages "#type + 8": clang warns, gcc does not)
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g -O1 \
	-fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -Wno-string-plus-int -Iinclude -Icoord -Icli
FUZZ_BINS := $(BUILD)/fuzz/fuzz_proto $(BUILD)/fuzz/fuzz_image

build: $(FUZZ_BINS)

$(BUILD)/fuzz/fuzz_proto: tests/fuzz/fuzz_proto.c tests/fuzz/check.h coord/proto.c \
		coord/proto_msg.c $(wildcard coord/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(filter %.c,$^) -o $@

$(BUILD)/fuzz/fuzz_image: tests/fuzz/fuzz_image.c tests/fuzz/check.h \
		$(filter-out cli/main.c,$(CLI_SRCS)) cli/cli.h $(wildcard coord/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -pthread $(filter %.c,$^) -o $@ -lev -ldl

# the seed messages of fuzz_proto's corpus (tests/fuzz/corpus/proto)
$(BUILD)/fuzz/mkseeds: tests/fuzz/mkseeds.c coord/proto.c coord/proto_msg.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Icoord $^ -o $@

.PHONY: fuzz fuzz-seeds soak
fuzz-seeds: $(BUILD)/fuzz/mkseeds
	$(BUILD)/fuzz/mkseeds tests/fuzz/corpus/proto

fuzz: deps
	@$(MAKE) --no-print-directory BUILD=$(BUILD) SAN=0 build
	@tests/fuzz/run.sh $(BUILD) $(FUZZ_SECS) docs/reliability.md

# 1,000 checkpoints of ckpt_stream with faults, 1,000 through ibsnapd;
# rewrites the figures table of docs/reliability.md (SOAK_CKPTS=n: fewer)
soak: deps
	@$(MAKE) --no-print-directory BUILD=$(BUILD) SAN=0 build
	@tests/soak/soak.sh $(BUILD) docs/reliability.md
# ---- end of issue 10 block ----
