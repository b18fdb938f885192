# mwcomms build.  `make` builds build/; `make SAN=1` builds build-san/ with ASan+UBSan (the shim with UBSan
# only, so that it can be preloaded into programs that are not built with ASan).
CC      ?= cc
SAN     ?=
CFLAGS  ?= -O2 -g
WARN     = -Wall -Wextra -Wshadow -Wno-unused-parameter -Wformat=2 -Wstrict-prototypes
CPPFLAGS = -D_GNU_SOURCE -Iinclude -Isrc/lib
BASE     = -std=gnu11 -fno-strict-aliasing $(WARN) $(CPPFLAGS) $(CFLAGS)

ifeq ($(SAN),1)
B       := build-san
SANFL   := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
SHIMSAN := -fsanitize=undefined -fno-sanitize-recover=undefined
else
B       := build
SANFL   :=
SHIMSAN :=
endif

LIB_SRC  := $(wildcard src/lib/*.c)
INS_SRC  := $(wildcard src/ins/*.c)
SHIM_SRC := $(wildcard src/shim/*.c)
RUN_SRC  := $(wildcard src/run/*.c)
CTL_SRC  := $(wildcard src/ctl/*.c)
HDRS     := $(wildcard include/mwcomms/*.h src/*/*.h)

all: $(B)/mwinsd $(B)/libmwshim.so $(B)/mwrun $(B)/mwctl unit

$(B):
	mkdir -p $(B)

$(B)/mwinsd: $(INS_SRC) $(LIB_SRC) $(HDRS) | $(B)
	$(CC) $(BASE) $(SANFL) -Isrc/ins -o $@ $(INS_SRC) $(LIB_SRC) -lsystemd -ljansson -lnettle -lseccomp

$(B)/libmwshim.so: $(SHIM_SRC) $(LIB_SRC) $(HDRS) | $(B)
	$(CC) $(BASE) $(SHIMSAN) -fPIC -shared -fvisibility=hidden -Dsyscall=mw_raw_syscall -Isrc/shim -o $@ $(SHIM_SRC) $(LIB_SRC) -ldl -lpthread

$(B)/mwrun: $(RUN_SRC) $(LIB_SRC) $(HDRS) | $(B)
	$(CC) $(BASE) $(SANFL) -Isrc/run -o $@ $(RUN_SRC) $(LIB_SRC) -lseccomp

$(B)/mwctl: $(CTL_SRC) $(LIB_SRC) $(HDRS) | $(B)
	$(CC) $(BASE) $(SANFL) -Isrc/ctl -o $@ $(CTL_SRC) $(LIB_SRC) -ljansson -lpcap

# Unit tests of one module each: tests/unit/test_NAME.c is linked with src/ins/NAME.c (and src/lib), and
# prints TAP ("ok N - what" / "not ok N - what").  tests/test_unit.py runs them.
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(B)/unit/%,$(UNIT_SRC))

unit: $(UNIT_BIN)

$(B)/unit/test_%: tests/unit/test_%.c src/ins/%.c $(LIB_SRC) $(HDRS) tests/unit/tap.h
	@mkdir -p $(B)/unit
	$(CC) $(BASE) $(SANFL) -Isrc/ins -Itests/unit -o $@ $< src/ins/$*.c $(LIB_SRC) $(UNIT_LIBS_$*)

deps:
	scripts/deps

demo: deps
	$(MAKE) all
	scripts/demo

check: deps
	tests/run

test: check

clean:
	rm -rf build build-san

.PHONY: all unit deps demo check test clean
