# guardiand — top-level build.
#
#   make            build everything under build/ (the source tree stays clean)
#   make test       check deps, build, run every test suite, then all of it again
#                   under AddressSanitizer + UndefinedBehaviorSanitizer
#   make run        check deps, build, start the daemon on the demo configuration
#   make deps       check (and as root, install) the Debian packages we need
#   make bench      build the benchmarks (build/bin/bench-*)
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

# Modules that make up the daemon, one folder each.
CORE_SRC := $(wildcard pvdb/*.c) $(wildcard ca/*.c) $(wildcard node/*.c) $(wildcard store/*.c)
SUP_SRC := $(wildcard supervisor/*.c)

CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/obj/%.o)
# The schema migrations (schema/NNN_name.sql), compiled in as C strings.
SCHEMA_SQL := $(sort $(wildcard schema/*.sql))
SCHEMA_C := $(BUILD)/gen/schema.c
CORE_OBJ += $(BUILD)/obj/gen/schema.o
SUP_OBJ := $(SUP_SRC:%.c=$(BUILD)/obj/%.o)
CORE_LIB := $(BUILD)/lib/libguardcore.a

# Tests mirror the tree: tests/<module>/test_*.c become one criterion binary each.
UNIT_SRC := $(wildcard tests/pvdb/test_*.c) $(wildcard tests/ca/test_*.c) $(wildcard tests/node/test_*.c) \
	$(wildcard tests/supervisor/test_*.c) $(wildcard tests/store/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/%.c=$(BUILD)/tests/%)
INTEG_SRC := $(wildcard tests/integration/test_*.c)
INTEG_BIN := $(INTEG_SRC:tests/%.c=$(BUILD)/tests/%)
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

BINS := $(BUILD)/bin/guardiand $(SYSTEM_SO)

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
	$(CC) $(LDFLAGS) -o $@ $(SUP_OBJ) $(WHOLE_CORE) $(LIBS_CORE)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(CORE_LIB) $(TEST_HELPER_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(TEST_HELPER_OBJ) $(WHOLE_CORE) $(LIBS_TEST) $(LIBS_LIBCA) $(LIBS_CORE)

# Supervisor unit tests also link the supervisor module they test (not main).
$(BUILD)/tests/supervisor/test_%: $(BUILD)/obj/tests/supervisor/test_%.o $(BUILD)/obj/supervisor/%.o $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/obj/supervisor/$*.o $(WHOLE_CORE) $(LIBS_TEST) $(LIBS_CORE)

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

# The test command: everything, then everything again under the sanitizers.
test: deps
	$(MAKE) check BUILD=build
	$(MAKE) check-asan

check: check-unit check-integration check-python

check-unit: $(UNIT_BIN) $(TEST_MOD_SO) $(SYSTEM_SO)
	@sh tools/run-tests.sh unit $(BUILD) $(UNIT_BIN)

check-integration: $(INTEG_BIN) $(BINS)
	@sh tools/run-tests.sh integration $(BUILD) $(INTEG_BIN)

check-python: $(BINS)
	@sh tools/run-tests.sh python $(BUILD)

check-asan:
	@rm -rf build/asan/reports && mkdir -p build/asan/reports
	$(MAKE) check BUILD=build/asan SANITIZE=1
	@sh tools/run-tests.sh sanitizer-reports build/asan

run: deps $(BINS)
	$(BUILD)/bin/guardiand --config etc/demo.ini

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
