# sim.mk — guardsim, the plant simulator (sim/), included by the Makefile.
#
# guardsim is pvdb/ and ca/ (from the core library: only what it uses is
# linked), the site-file reader ($(CONFIG_OBJ)), and sim/*.c. It is part
# of `all` and of `make run` (tools/run-demo.sh starts it before guardiand),
# the python tests start it (tests/integration/test_guardsim.py), so
# check-python needs it too, and so does `make bench` (bench-nodes --plant).
# `make install` leaves it out: it is a tool for the demo and the tests, not
# for a site.

SIM_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard sim/*.c))
GUARDSIM := $(BUILD)/bin/guardsim

$(GUARDSIM): $(SIM_OBJ) $(CONFIG_OBJ) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(SIM_OBJ) $(CONFIG_OBJ) $(CORE_LIB) $(LIBS_CORE)

all: $(GUARDSIM)
run: $(GUARDSIM)
check-python: $(GUARDSIM)
bench: $(GUARDSIM)
