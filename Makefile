# mwcomms build.  `make` builds build/; `make SAN=1` builds build-san/ with ASan+UBSan (the shim with UBSan
# only, so that it can be preloaded into programs that are not built with ASan).
CC      ?= cc
SAN     ?=
CFLAGS  ?= -O2 -g
WARN     = -Wall -Wextra -Wshadow -Wno-unused-parameter -Wformat=2 -Wstrict-prototypes
# CPPFLAGS, CFLAGS and LDFLAGS from the environment or the command line are added to ours (dpkg-buildflags'
# hardening flags come this way).
MWCPPFLAGS = -D_GNU_SOURCE -Iinclude -Isrc/lib
BASE     = -std=gnu11 -fno-strict-aliasing $(WARN) $(MWCPPFLAGS) $(CPPFLAGS) $(CFLAGS)

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

# Where `make install` puts things (DESTDIR is prepended to each, for staging and packaging).  mwrun is
# built knowing SBINDIR and PKGLIBDIR relative to BINDIR (src/run/locate.c), so give the same values to
# `make` and to `make install`; a change rebuilds mwrun.
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
SBINDIR     ?= $(PREFIX)/sbin
LIBDIR      ?= $(PREFIX)/lib
PKGLIBDIR   ?= $(LIBDIR)/mwcomms
DATADIR     ?= $(PREFIX)/share
MANDIR      ?= $(DATADIR)/man
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
SYSCONFDIR  ?= /etc
UNITDIR     ?= $(PREFIX)/lib/systemd/system
INSTALL     ?= install
REL_SBINDIR   := $(shell realpath -m --relative-to=$(BINDIR) $(SBINDIR))
REL_PKGLIBDIR := $(shell realpath -m --relative-to=$(BINDIR) $(PKGLIBDIR))

PROGS := $(B)/mwinsd $(B)/libmwshim.so $(B)/mwrun $(B)/mwctl

all: $(PROGS) unit

programs: $(PROGS)

$(B):
	mkdir -p $(B)

$(B)/mwinsd: $(INS_SRC) $(LIB_SRC) $(HDRS) | $(B)
	$(CC) $(BASE) $(SANFL) -Isrc/ins $(LDFLAGS) -o $@ $(INS_SRC) $(LIB_SRC) -lsystemd -ljansson -lnettle -lseccomp

$(B)/libmwshim.so: $(SHIM_SRC) $(LIB_SRC) $(HDRS) | $(B)
	$(CC) $(BASE) $(SHIMSAN) -fPIC -shared -fvisibility=hidden -Dsyscall=mw_raw_syscall -Isrc/shim $(LDFLAGS) -o $@ $(SHIM_SRC) $(LIB_SRC) -ldl -lpthread

# The install layout mwrun was built for: rewritten only when it changes, so that it rebuilds mwrun only then.
$(B)/layout: FORCE | $(B)
	@echo '$(REL_SBINDIR) $(REL_PKGLIBDIR)' | cmp -s - $@ || echo '$(REL_SBINDIR) $(REL_PKGLIBDIR)' > $@

$(B)/mwrun: $(RUN_SRC) $(LIB_SRC) $(HDRS) $(B)/layout | $(B)
	$(CC) $(BASE) $(SANFL) -Isrc/run -DMW_REL_SBINDIR='"$(REL_SBINDIR)"' -DMW_REL_PKGLIBDIR='"$(REL_PKGLIBDIR)"' \
		$(LDFLAGS) -o $@ $(RUN_SRC) $(LIB_SRC) -lseccomp

$(B)/mwctl: $(CTL_SRC) $(LIB_SRC) $(HDRS) | $(B)
	$(CC) $(BASE) $(SANFL) -Isrc/ctl $(LDFLAGS) -o $@ $(CTL_SRC) $(LIB_SRC) -ljansson -lpcap

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

# Modes: programs 0755 and the shim 0644 (the loader maps it; nothing runs it), no set-ID bit anywhere (mwrun
# makes a user namespace when it is not root); pages, completion and unit 0644.  The policy is a config file:
# installed only if there is none, 0644 (mwinsd re-reads it as its own user, and it holds no secret).
MAN1 := man/mwrun.1
MAN5 := man/mwcomms-policy.5
MAN8 := man/mwctl.8 man/mwinsd.8

install: $(PROGS)
	$(INSTALL) -d -m 0755 $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(PKGLIBDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/mwcomms
	$(INSTALL) -m 0755 $(B)/mwrun $(DESTDIR)$(BINDIR)/mwrun
	$(INSTALL) -m 0755 $(B)/mwinsd $(B)/mwctl $(DESTDIR)$(SBINDIR)/
	$(INSTALL) -m 0644 $(B)/libmwshim.so $(DESTDIR)$(PKGLIBDIR)/libmwshim.so
	$(INSTALL) -m 0644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/
	$(INSTALL) -m 0644 $(MAN5) $(DESTDIR)$(MANDIR)/man5/
	$(INSTALL) -m 0644 $(MAN8) $(DESTDIR)$(MANDIR)/man8/
	$(INSTALL) -m 0644 completion/mwctl $(DESTDIR)$(BASHCOMPDIR)/mwctl
	$(INSTALL) -m 0644 completion/mwrun $(DESTDIR)$(BASHCOMPDIR)/mwrun
	sed -e 's|/usr/local/sbin/|$(SBINDIR)/|' -e 's|/etc/mwcomms/|$(SYSCONFDIR)/mwcomms/|' contrib/systemd/mwinsd.service > $(DESTDIR)$(UNITDIR)/mwinsd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/mwinsd.service
	[ -e $(DESTDIR)$(SYSCONFDIR)/mwcomms/policy ] || \
		$(INSTALL) -m 0644 contrib/policy $(DESTDIR)$(SYSCONFDIR)/mwcomms/policy

# Removes what install put there, except the policy if it was changed (and the directories if not empty).
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/mwrun $(DESTDIR)$(SBINDIR)/mwinsd $(DESTDIR)$(SBINDIR)/mwctl \
		$(DESTDIR)$(PKGLIBDIR)/libmwshim.so \
		$(DESTDIR)$(MANDIR)/man1/mwrun.1 $(DESTDIR)$(MANDIR)/man5/mwcomms-policy.5 \
		$(DESTDIR)$(MANDIR)/man8/mwctl.8 $(DESTDIR)$(MANDIR)/man8/mwinsd.8 \
		$(DESTDIR)$(BASHCOMPDIR)/mwctl $(DESTDIR)$(BASHCOMPDIR)/mwrun $(DESTDIR)$(UNITDIR)/mwinsd.service
	if cmp -s contrib/policy $(DESTDIR)$(SYSCONFDIR)/mwcomms/policy; then \
		rm -f $(DESTDIR)$(SYSCONFDIR)/mwcomms/policy; fi
	rmdir $(DESTDIR)$(PKGLIBDIR) $(DESTDIR)$(SYSCONFDIR)/mwcomms 2>/dev/null || true

clean:
	rm -rf build build-san

FORCE:

.PHONY: all programs unit deps demo check test clean install uninstall FORCE
