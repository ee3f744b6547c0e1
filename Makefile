# guardiand — top-level build.
#
#   make            build everything under build/ (the source tree stays clean)
#   make test       check deps, build, run every test suite, then all of it again
#                   under AddressSanitizer + UndefinedBehaviorSanitizer
#   make run        check deps, build, start the daemon on the demo configuration
#   make deps       check (and as root, install) the Debian packages we need
#   make bench      build the benchmarks (build/bin/bench-*)
#   make fuzz       build the libFuzzer targets (clang, ASan+UBSan) into build/fuzz/ and run
#                   each for FUZZ_SECONDS (60)
#
# BUILD selects the output folder; SANITIZE=1 builds with ASan+UBSan.

BUILD ?= build
SANITIZE ?=
CC ?= gcc

CFLAGS := -std=gnu11 -Wall -Wextra -Werror -g -I. -MMD -MP -D_GNU_SOURCE
LDFLAGS :=
ifeq ($(SANITIZE),1)
CFLAGS += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
else
CFLAGS += -O2
endif

LIBS_CORE := -lev -lm -ldl -linih -lsqlite3
LIBS_LIBCA := -lca -lCom
LIBS_TEST := -lcriterion
# The control socket's JSON (guardiand and guardctl): libjansson.
LIBS_JSON := -ljansson

# Modules that make up the daemon, one folder each.
CORE_SRC := $(wildcard pvdb/*.c) $(wildcard ca/*.c) $(wildcard node/*.c) $(wildcard store/*.c) \
            $(wildcard medm/*.c)
# The daemon: the supervisor, and the plant channels it gives nodes (libca).
SUP_SRC := $(wildcard supervisor/*.c) $(wildcard ctl/*.c) $(wildcard plant/*.c)
PLANT_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard plant/*.c))

CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/obj/%.o)
# The schema migrations (schema/NNN_name.sql), compiled in as C strings.
SCHEMA_SQL := $(sort $(wildcard schema/*.sql))
SCHEMA_C := $(BUILD)/gen/schema.c
CORE_OBJ += $(BUILD)/obj/gen/schema.o
SUP_OBJ := $(SUP_SRC:%.c=$(BUILD)/obj/%.o)
CORE_LIB := $(BUILD)/lib/libguardcore.a

# Tests mirror the tree: tests/<module>/test_*.c become one criterion binary each.
UNIT_SRC := $(wildcard tests/pvdb/test_*.c) $(wildcard tests/ca/test_*.c) $(wildcard tests/node/test_*.c) \
	$(wildcard tests/supervisor/test_*.c) $(wildcard tests/store/test_*.c) $(wildcard tests/plant/test_*.c) \
	$(wildcard tests/medm/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/%.c=$(BUILD)/tests/%)
INTEG_SRC := $(wildcard tests/integration/test_*.c)
INTEG_BIN := $(INTEG_SRC:tests/%.c=$(BUILD)/tests/%)
# tests/lib: the harness that starts daemons, and the helpers the integration tests and the
# benchmarks share (one header a topic); every test and benchmark binary links all of it.
TEST_HELPER_SRC := $(wildcard tests/lib/*.c)
TEST_HELPER_OBJ := $(TEST_HELPER_SRC:%.c=$(BUILD)/obj/%.o)

BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bin/bench-%)

# System modules (dlopen'ed by guardiand): systems/*.c, and the test modules
# tests/node/mod_*.c, each built as a shared object.
SYSTEM_SRC := $(wildcard systems/*.c)
SYSTEM_SO := $(SYSTEM_SRC:systems/%.c=$(BUILD)/systems/%.so)
TEST_MOD_SRC := $(wildcard tests/node/mod_*.c)
TEST_MOD_SO := $(TEST_MOD_SRC:tests/node/%.c=$(BUILD)/tests/node/%.so)

BINS := $(BUILD)/bin/guardiand $(BUILD)/bin/guardctl $(SYSTEM_SO)

# Keep test objects between runs (they are intermediates of pattern rules).
.SECONDARY:

.PHONY: all deps test check check-unit check-integration check-python check-asan run bench clean
all: $(BINS) $(UNIT_BIN) $(INTEG_BIN) $(BENCH_BIN) $(TEST_MOD_SO)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(SCHEMA_C): $(SCHEMA_SQL) tools/gen-schema.sh
	@mkdir -p $(dir $@)
	sh tools/gen-schema.sh $(SCHEMA_SQL) > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/gen/schema.o: $(SCHEMA_C)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(CORE_LIB): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# Programs that load systems export the whole guardian.h API (-rdynamic, and
# every object of the core library, used by this program or not).
WHOLE_CORE = -rdynamic -Wl,--whole-archive $(CORE_LIB) -Wl,--no-whole-archive

$(BUILD)/bin/guardiand: $(SUP_OBJ) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(SUP_OBJ) $(WHOLE_CORE) $(LIBS_LIBCA) $(LIBS_CORE) $(LIBS_JSON)

# guardctl, the command-line client of the control socket (guardctl/*.c), which writes
# MEDM screens the way the daemon does (medm/files.c).
GUARDCTL_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard guardctl/*.c)) $(BUILD)/obj/medm/files.o
$(BUILD)/bin/guardctl: $(GUARDCTL_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(GUARDCTL_OBJ) $(LIBS_JSON)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(CORE_LIB) $(TEST_HELPER_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(TEST_HELPER_OBJ) $(WHOLE_CORE) $(LIBS_TEST) $(LIBS_LIBCA) $(LIBS_CORE)

# Supervisor unit tests also link the supervisor module they test (not main).
# The configuration reader (also in guardsim and the config fuzzer): it holds
# the access rules, which know the node channels.
CONFIG_OBJ := $(BUILD)/obj/supervisor/config.o $(BUILD)/obj/supervisor/access.o \
	$(BUILD)/obj/supervisor/nodepv.o
SUP_TEST_SHARED := $(CONFIG_OBJ)
$(BUILD)/tests/supervisor/test_%: $(BUILD)/obj/tests/supervisor/test_%.o $(BUILD)/obj/supervisor/%.o \
		$(SUP_TEST_SHARED) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(sort $(BUILD)/obj/supervisor/$*.o $(SUP_TEST_SHARED)) $(WHOLE_CORE) \
		$(LIBS_TEST) $(LIBS_CORE)

# Plant unit tests link the plant module (and libca).
$(BUILD)/tests/plant/test_%: $(BUILD)/obj/tests/plant/test_%.o $(PLANT_OBJ) $(CORE_LIB) $(TEST_HELPER_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(PLANT_OBJ) $(TEST_HELPER_OBJ) $(WHOLE_CORE) $(LIBS_TEST) $(LIBS_LIBCA) $(LIBS_CORE)

# A system module: position-independent, resolved against guardiand at load.
$(BUILD)/systems/%.so: systems/%.c node/guardian.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -shared -o $@ $<
$(BUILD)/tests/node/%.so: tests/node/%.c node/guardian.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -shared -o $@ $<

$(BUILD)/bin/bench-%: $(BUILD)/obj/bench/%.o $(CORE_LIB) $(TEST_HELPER_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(TEST_HELPER_OBJ) $(CORE_LIB) $(LIBS_LIBCA) $(LIBS_CORE)

bench: $(BENCH_BIN) $(BINS)

deps:
	@sh tools/deps.sh

# The test command: everything, then everything again under the sanitizers,
# then the fuzz targets over their corpora (a short, fixed run of each).
test: deps
	$(MAKE) check BUILD=build
	$(MAKE) check-asan
	$(MAKE) check-fuzz

check: check-unit check-integration check-python

check-unit: $(UNIT_BIN) $(TEST_MOD_SO) $(SYSTEM_SO)
	@sh tools/run-tests.sh unit $(BUILD) $(UNIT_BIN)

check-integration: $(INTEG_BIN) $(BINS)
	@sh tools/run-tests.sh integration $(BUILD) $(INTEG_BIN)

check-python: $(BINS) $(TEST_MOD_SO) $(BUILD)/tests/integration/preload_ca_as.so
	@sh tools/run-tests.sh python $(BUILD)

# Loaded into python3's CA clients by the access tests (LD_PRELOAD): no sanitizers.
$(BUILD)/tests/integration/preload_ca_as.so: tests/integration/preload_ca_as.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -Wall -Wextra -Werror -O2 -D_GNU_SOURCE -fPIC -shared -o $@ $< -ldl

check-asan:
	@rm -rf build/asan/reports && mkdir -p build/asan/reports
	$(MAKE) check BUILD=build/asan SANITIZE=1
	@sh tools/run-tests.sh sanitizer-reports build/asan

# The demo: guardsim (the plant, over CA), then guardiand; Ctrl-C stops both.
run: deps $(BINS)
	sh tools/run-demo.sh $(BUILD)

clean:
	rm -rf build

# ---- installation: make && sudo make install (README, "systemd and installation") ----
#
# PREFIX (default /usr/local) and DESTDIR as usual; the directories below
# can be overridden one by one. The unit goes to $(PREFIX)/lib/systemd/system,
# which systemd searches for /usr/local as for /usr (/etc/systemd/system is
# the administrator's). The configuration is /etc/guardiand/guardiand.ini
# whatever the PREFIX (the unit names it), installed only if there is none:
# an operator's file is never overwritten.
#
# `install` builds nothing (so `sudo make install` leaves no root-owned files
# in the tree): build first, with the same PREFIX, which also sets the
# compiled-in system search path.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
SYSTEMSDIR ?= $(PREFIX)/lib/guardiand/systems
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
DATADIR ?= $(PREFIX)/share/guardiand
UNITDIR ?= $(PREFIX)/lib/systemd/system
COMPLETIONDIR ?= $(PREFIX)/share/bash-completion/completions

# The default search path compiled into guardiand: this PREFIX's systems,
# then the distribution's. config.o is rebuilt when it changes (the stamp is
# rewritten only when its content differs).
SYSTEMS_PATH := $(SYSTEMSDIR)$(if $(filter /usr/lib/guardiand/systems,$(SYSTEMSDIR)),,:/usr/lib/guardiand/systems)
SYSTEMS_STAMP := $(BUILD)/gen/systems-path
$(SYSTEMS_STAMP): FORCE
	@mkdir -p $(dir $@)
	@echo '$(SYSTEMS_PATH)' | cmp -s - $@ || echo '$(SYSTEMS_PATH)' > $@
$(BUILD)/obj/supervisor/config.o: $(SYSTEMS_STAMP)
$(BUILD)/obj/supervisor/config.o: CFLAGS += -DGUARDIAND_SYSTEMS_PATH='"$(SYSTEMS_PATH)"'

.PHONY: install uninstall FORCE
FORCE:

install:
	@test -x $(BUILD)/bin/guardiand || { echo "make install: build first: make PREFIX=$(PREFIX)" >&2; exit 1; }
	@built=$$(cat $(SYSTEMS_STAMP) 2>/dev/null); [ "$$built" = '$(SYSTEMS_PATH)' ] || \
		echo "make install: note: guardiand was built for systems in '$$built'; rebuild with make PREFIX=$(PREFIX)" >&2
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSTEMSDIR) $(DESTDIR)$(INCLUDEDIR)/guardiand \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DATADIR) \
		$(DESTDIR)$(SYSCONFDIR)/guardiand
	install -m 0755 $(BUILD)/bin/guardiand $(DESTDIR)$(BINDIR)/guardiand
	install -m 0644 $(wildcard $(BUILD)/systems/*.so) $(DESTDIR)$(SYSTEMSDIR)/
	install -m 0644 node/guardian.h $(DESTDIR)$(INCLUDEDIR)/guardiand/guardian.h
	install -m 0644 docs/guardiand.8 $(DESTDIR)$(MANDIR)/man8/guardiand.8
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' etc/guardiand.service \
		> $(DESTDIR)$(UNITDIR)/guardiand.service.tmp
	chmod 0644 $(DESTDIR)$(UNITDIR)/guardiand.service.tmp
	mv $(DESTDIR)$(UNITDIR)/guardiand.service.tmp $(DESTDIR)$(UNITDIR)/guardiand.service
	install -m 0644 etc/guardiand.ini $(DESTDIR)$(DATADIR)/guardiand.ini.example
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/guardiand/guardiand.ini ]; then \
		echo "make install: keeping $(DESTDIR)$(SYSCONFDIR)/guardiand/guardiand.ini (the new example is $(DATADIR)/guardiand.ini.example)"; \
	else \
		echo "install -m 0644 etc/guardiand.ini $(DESTDIR)$(SYSCONFDIR)/guardiand/guardiand.ini"; \
		install -m 0644 etc/guardiand.ini $(DESTDIR)$(SYSCONFDIR)/guardiand/guardiand.ini; \
	fi
	@if [ -x $(BUILD)/bin/guardctl ]; then \
		set -x; \
		install -d $(DESTDIR)$(MANDIR)/man1 && \
		install -m 0755 $(BUILD)/bin/guardctl $(DESTDIR)$(BINDIR)/guardctl && \
		install -m 0644 docs/guardctl.1 $(DESTDIR)$(MANDIR)/man1/guardctl.1; \
	fi
	@if [ -f tools/guardctl.bash-completion ]; then \
		set -x; \
		install -d $(DESTDIR)$(COMPLETIONDIR) && \
		install -m 0644 tools/guardctl.bash-completion $(DESTDIR)$(COMPLETIONDIR)/guardctl; \
	fi

# Removes what install put there, except the configuration (the operator's)
# and /var/lib/guardiand (the database: history and crash records).
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/guardiand $(DESTDIR)$(BINDIR)/guardctl \
		$(addprefix $(DESTDIR)$(SYSTEMSDIR)/,$(notdir $(SYSTEM_SO))) \
		$(DESTDIR)$(INCLUDEDIR)/guardiand/guardian.h \
		$(DESTDIR)$(MANDIR)/man8/guardiand.8 $(DESTDIR)$(MANDIR)/man1/guardctl.1 \
		$(DESTDIR)$(UNITDIR)/guardiand.service $(DESTDIR)$(DATADIR)/guardiand.ini.example \
		$(DESTDIR)$(COMPLETIONDIR)/guardctl
	-rmdir $(DESTDIR)$(SYSTEMSDIR) $(DESTDIR)$(PREFIX)/lib/guardiand \
		$(DESTDIR)$(INCLUDEDIR)/guardiand $(DESTDIR)$(DATADIR) 2>/dev/null

# guardsim, the plant simulator (sim/): its rules live beside it.
-include sim/sim.mk

# ---- fuzzing: make fuzz, and the regression in make test (README, "Fuzzing") ----
#
# One libFuzzer target per tests/fuzz/<target>.c. Everything a target runs is
# compiled again with clang into FUZZ_BUILD, with the fuzzer's coverage
# instrumentation and ASan+UBSan (any report is a crash), never taken from
# the gcc build. `make fuzz` runs each target for FUZZ_SECONDS over its seed
# corpus (tests/fuzz/corpus/<target>), its regression inputs
# (tests/fuzz/regress/<target>) and what earlier runs found
# (FUZZ_BUILD/corpus/<target>); check-fuzz (part of `make test`) runs each
# over the seeds and regression inputs plus FUZZ_RUNS mutations, with a fixed
# seed. tools/fuzz.sh says how a target is run.
FUZZ_BUILD ?= build/fuzz
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_RUNS ?= 3000
FUZZ_TARGETS := ca_circuit ca_udp ctl config
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=gnu11 -Wall -Wextra -Werror -g -O1 -I. -MMD -MP -D_GNU_SOURCE $(FUZZ_SAN) \
	-fsanitize=fuzzer-no-link
FUZZ_BIN := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/bin/%)
FUZZ_CORE_OBJ := $(CORE_SRC:%.c=$(FUZZ_BUILD)/obj/%.o) $(FUZZ_BUILD)/obj/gen/schema.o
FUZZ_CORE_LIB := $(FUZZ_BUILD)/lib/libguardcore.a
FUZZ_SUP_OBJ := $(filter-out %/main.o,$(SUP_SRC:%.c=$(FUZZ_BUILD)/obj/%.o))
FUZZ_CA_OBJ := $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_ca.o
# The systems the ctl target's nodes run (loaded, never stepped: not instrumented).
FUZZ_SYSTEM_SO := $(SYSTEM_SRC:systems/%.c=$(FUZZ_BUILD)/systems/%.so)

.PHONY: fuzz fuzz-build check-fuzz

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_BUILD)/gen/schema.c: $(SCHEMA_SQL) tools/gen-schema.sh
	@mkdir -p $(dir $@)
	sh tools/gen-schema.sh $(SCHEMA_SQL) > $@.tmp && mv $@.tmp $@

$(FUZZ_BUILD)/obj/gen/schema.o: $(FUZZ_BUILD)/gen/schema.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_CORE_LIB): $(FUZZ_CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(FUZZ_BUILD)/systems/%.so: systems/%.c node/guardian.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=gnu11 -Wall -Wextra -Werror -g -O1 -I. -D_GNU_SOURCE -fPIC -shared -o $@ $<

$(FUZZ_BUILD)/bin/ca_circuit $(FUZZ_BUILD)/bin/ca_udp: $(FUZZ_BUILD)/bin/%: \
		$(FUZZ_BUILD)/obj/tests/fuzz/%.o $(FUZZ_CA_OBJ) $(FUZZ_CORE_LIB)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LIBS_CORE)

# The control socket runs in a real daemon context: the supervisor (not its
# main), the whole core for the systems it loads, and those systems.
$(FUZZ_BUILD)/bin/ctl: $(FUZZ_BUILD)/obj/tests/fuzz/ctl.o $(FUZZ_SUP_OBJ) $(FUZZ_CORE_LIB) \
		$(FUZZ_SYSTEM_SO)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< $(FUZZ_SUP_OBJ) -rdynamic \
		-Wl,--whole-archive $(FUZZ_CORE_LIB) -Wl,--no-whole-archive $(LIBS_LIBCA) $(LIBS_CORE) $(LIBS_JSON)

$(FUZZ_BUILD)/bin/config: $(FUZZ_BUILD)/obj/tests/fuzz/config.o $(FUZZ_BUILD)/obj/supervisor/config.o \
		$(FUZZ_BUILD)/obj/supervisor/access.o $(FUZZ_BUILD)/obj/supervisor/nodepv.o $(FUZZ_CORE_LIB)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ -linih $(LIBS_CORE)

fuzz-build: $(FUZZ_BIN)

fuzz: deps fuzz-build
	@sh tools/fuzz.sh run $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

check-fuzz: fuzz-build
	@sh tools/run-tests.sh fuzz $(FUZZ_BUILD) $(FUZZ_RUNS) $(FUZZ_TARGETS)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
-include $(shell find $(FUZZ_BUILD)/obj -name '*.d' 2>/dev/null)
