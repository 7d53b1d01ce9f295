# imapmerge — GNU make.
#
#   make            build build/imapmerge
#   make check      install what is missing (as root), build, run every test
#   make depcheck   check the layers' #include rule; make check runs it first
#   make demo       start the test bed with sample mail (and imapmerge in front)
#   make asan       build and run the whole suite under ASan + UBSan
#   make fuzz       build the libFuzzer targets (parsers, whole session), run
#                   each FUZZ_SECONDS
#   make bench      run the benchmarks, results in build/bench/
#   make install    binary, man pages, sample config, state directory and
#                   systemd unit; PREFIX=/usr/local DESTDIR= (see below); as
#                   root also the _imapmerge account and Debian's placeholder
#                   certificate when they are missing (HOST_SETUP=no: not)
#   make uninstall  removes what install put, but the config and the state
#
# Sources are found by wildcard: protocol/*.c make libprotocol.a, conf/*.c and
# the layers' proxy/*/*.c make libimapmerge.a (proxy/main.c is the program),
# each tests/unit/test_*.c is one test program, each tests/fuzz/fuzz_*.c one
# fuzzer, each tests/bench/bench_*.c one benchmark program.  The layers and
# the rule between them: docs/architecture.md; make depcheck checks it.

# Where `make install` puts things.  DESTDIR is prepended to every path (a
# staging tree for packages); the paths written into the installed files
# (the unit's ExecStart, the sample's state-dir) are without it.
PREFIX		?= /usr/local
SBINDIR		?= $(PREFIX)/sbin
MANDIR		?= $(PREFIX)/share/man
SYSCONFDIR	?= /etc
STATEDIR	?= /var/lib/imapmerge
SYSTEMDUNITDIR	?= /lib/systemd/system
DESTDIR		?=
HOST_SETUP	?= yes

B		?= build
CC		?= cc
PKG_CONFIG	?= pkg-config
PKGS		 = libevent libevent_openssl openssl libsasl2 sqlite3
PYTHON		?= /usr/bin/python3
FUZZ_SECONDS	?= 60
FUZZ_CC		?= clang

OPT		?= -O2 -g
WARN		 = -Wall -Wextra -Werror -Wshadow -Wpointer-arith \
		   -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
		   -Wno-unused-parameter
CPPFLAGS	+= -D_GNU_SOURCE -I.
# pkg-config is asked only when compiling, so `make -n` and `make clean`
# work before the -dev packages are there.
PKG_CFLAGS	 = $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS	 = $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
ALL_CFLAGS	 = -std=c11 $(OPT) $(WARN) $(SAN) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS)
ALL_LDFLAGS	 = $(SAN) $(LDFLAGS)

PROTO_SRC	:= $(sort $(wildcard protocol/*.c))
LIB_SRC		:= $(sort $(wildcard conf/*.c) $(wildcard proxy/*/*.c))
MAIN_SRC	:= $(wildcard proxy/main.c)
UNIT_SRC	:= $(sort $(wildcard tests/unit/test_*.c))
FUZZ_SRC	:= $(sort $(wildcard tests/fuzz/fuzz_*.c))
BENCH_SRC	:= $(sort $(wildcard tests/bench/bench_*.c))

PROTO_OBJ	:= $(PROTO_SRC:%.c=$(B)/%.o)
LIB_OBJ		:= $(LIB_SRC:%.c=$(B)/%.o)
MAIN_OBJ	:= $(MAIN_SRC:%.c=$(B)/%.o)
UNIT_BIN	:= $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
BENCH_BIN	:= $(BENCH_SRC:tests/bench/%.c=$(B)/bench/%)
FUZZ_BIN	:= $(FUZZ_SRC:tests/fuzz/%.c=$(B)/fuzz/%)

LIBPROTO	:= $(B)/libprotocol.a
LIBIMAPMERGE	:= $(B)/libimapmerge.a
PROG		:= $(if $(MAIN_SRC),$(B)/imapmerge)

.PHONY: all check test unit demo demo-down asan fuzz bench install uninstall \
	install-host \
	clean deps depcheck
.DELETE_ON_ERROR:

all: $(PROG) $(LIBPROTO)

$(B)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(LIBPROTO): $(PROTO_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(LIBIMAPMERGE): $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(B)/imapmerge: $(MAIN_OBJ) $(LIBIMAPMERGE) $(LIBPROTO)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/tests/%: tests/unit/%.c tests/unit/unit.h $(LIBIMAPMERGE) $(LIBPROTO)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes $(ALL_LDFLAGS) -o $@ $< \
	    $(LIBIMAPMERGE) $(LIBPROTO) $(PKG_LIBS)

$(B)/bench/%: tests/bench/%.c $(LIBIMAPMERGE) $(LIBPROTO)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes $(ALL_LDFLAGS) -o $@ $< \
	    $(LIBIMAPMERGE) $(LIBPROTO) $(PKG_LIBS)

# The session fuzzer's harness doubles as a unit test that replays its corpus.
$(B)/tests/test_session_replay: tests/fuzz/fuzz_session.c proxy/net/conn.c

unit: $(UNIT_BIN)

deps:
	@tests/deps build test clients

depcheck:
	@$(PYTHON) tests/depcheck

# The whole suite: C unit tests, then pytest against the real test bed.
check: deps
	@$(PYTHON) tests/depcheck
	$(MAKE) all unit
	$(PYTHON) tests/run --build $(B)

test: all unit
	$(PYTHON) tests/run --build $(B)

asan: deps
	$(MAKE) B=build/asan OPT="-O1 -g -fno-omit-frame-pointer" \
	    SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	    all unit
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    $(PYTHON) tests/run --build build/asan

# libFuzzer targets are built with clang over the protocol sources only,
# but for the session target.
FUZZ_FLAGS	 = -std=c11 -O1 -g -fno-omit-frame-pointer \
		   -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		   $(CPPFLAGS) $(PKG_CFLAGS)

$(B)/fuzz/%: tests/fuzz/%.c $(PROTO_SRC)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $^ $(PKG_LIBS)

# The session target is the whole daemon but main.c, and but conn.c, which
# the harness includes with its own conn_connect (bufferevent pairs).
$(B)/fuzz/fuzz_session: tests/fuzz/fuzz_session.c \
    $(filter-out proxy/net/conn.c,$(LIB_SRC)) $(PROTO_SRC)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $^ $(PKG_LIBS)

fuzz:
	@tests/deps build fuzz
	$(MAKE) $(FUZZ_BIN)
	@set -e; for f in $(FUZZ_BIN); do \
	    name=$$(basename $$f); seeds=tests/fuzz/corpus/$${name#fuzz_}; \
	    work=$(B)/fuzz/work/$$name; mkdir -p $$work $$seeds; \
	    dict=tests/fuzz/$${name#fuzz_}.dict; \
	    [ -f $$dict ] && dict=-dict=$$dict || dict=; \
	    echo "== $$name for $(FUZZ_SECONDS) s"; \
	    $$f -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 $$dict \
	        -artifact_prefix=$(B)/fuzz/ -print_final_stats=1 \
	        $$work $$seeds 2>$(B)/fuzz/$$name.log || \
	        { tail -40 $(B)/fuzz/$$name.log; exit 1; }; \
	    grep -E '^(stat::number_of_executed_units|Done)' $(B)/fuzz/$$name.log || true; \
	done

# Script benchmarks (tests/bench/bench_*.py) are linked into build/bench.
BENCH_PY	:= $(patsubst tests/bench/%.py,$(B)/bench/%,$(wildcard tests/bench/bench_*.py))

$(B)/bench/%: tests/bench/%.py
	@mkdir -p $(@D)
	ln -sf $(abspath $<) $@

bench: deps all $(BENCH_BIN) $(BENCH_PY)
	@tests/deps bench
	IMAPMERGE_BUILD=$(abspath $(B)) $(PYTHON) tests/bench/run --build $(B)

demo: deps all
	@tests/testbed/demo

demo-down:
	@tests/testbed/testbed down $(B)/demo

# The sample always replaces the installed sample; it becomes imapmerge.conf
# only where there is none yet, so an operator's file is never overwritten.
# Both are mode 0600: the sample holds a token-command, and imapmerge
# refuses such a file while others may read it.
INSTALL_SED	 = sed -e 's|@SBINDIR@|$(SBINDIR)|g' \
		       -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		       -e 's|@STATEDIR@|$(STATEDIR)|g'
CONF_SED	 = sed -e 's|"/etc/imapmerge/|"$(SYSCONFDIR)/imapmerge/|g' \
		       -e 's|^state-dir "/var/lib/imapmerge"|state-dir "$(STATEDIR)"|'
ETC		 = $(DESTDIR)$(SYSCONFDIR)/imapmerge

# What the daemon needs from the machine rather than from the installed
# tree: the account it drops to and a certificate to start with, Debian's
# placeholder (package ssl-cert, installed if missing as make check and
# make demo install what they need), which the sample names until the
# center's own replaces it.  Made only when missing and only by real root:
# a package build runs unprivileged or under fakeroot and leaves both to
# the package's maintainer scripts, as HOST_SETUP=no does.  Never removed.
SNAKEOIL	 = /etc/ssl/certs/ssl-cert-snakeoil.pem

install-host:
	@if [ "$(HOST_SETUP)" != yes ] || [ "$$(id -u)" != 0 ] || \
	    [ -n "$${FAKEROOTKEY-}" ]; then \
	    echo "not creating the _imapmerge account or a certificate" \
	        "(not root, or HOST_SETUP=$(HOST_SETUP))"; \
	    exit 0; \
	fi; \
	if ! getent passwd _imapmerge >/dev/null; then \
	    echo "adduser --system --group --home $(STATEDIR) _imapmerge"; \
	    adduser --quiet --system --group --no-create-home \
	        --home $(STATEDIR) _imapmerge || exit 1; \
	fi; \
	if [ ! -e $(SNAKEOIL) ]; then \
	    command -v make-ssl-cert >/dev/null || tests/deps build || exit 1; \
	    echo "make-ssl-cert generate-default-snakeoil"; \
	    make-ssl-cert generate-default-snakeoil || exit 1; \
	fi

install: all install-host
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(MANDIR)/man5 $(ETC) $(DESTDIR)$(SYSTEMDUNITDIR)
	install -d -m 0700 $(DESTDIR)$(STATEDIR)
	install -m 0755 $(B)/imapmerge $(DESTDIR)$(SBINDIR)/imapmerge
	install -m 0644 docs/man/imapmerge.8 $(DESTDIR)$(MANDIR)/man8/imapmerge.8
	install -m 0644 docs/man/imapmerge.conf.5 \
	    $(DESTDIR)$(MANDIR)/man5/imapmerge.conf.5
	$(CONF_SED) conf/imapmerge.conf >$(B)/imapmerge.conf.sample
	@# root:_imapmerge 0640 once that group exists (a reload reads the
	@# file after the daemon dropped its privileges), else root 0600.
	@if getent group _imapmerge >/dev/null; then m="-m 0640 -g _imapmerge"; \
	else m="-m 0600"; fi; \
	echo "install $$m $(B)/imapmerge.conf.sample $(ETC)/imapmerge.conf.sample"; \
	install $$m $(B)/imapmerge.conf.sample $(ETC)/imapmerge.conf.sample; \
	if [ -e $(ETC)/imapmerge.conf ]; then \
	    echo "$(ETC)/imapmerge.conf exists, left as it is"; \
	else \
	    echo "install $$m $(B)/imapmerge.conf.sample $(ETC)/imapmerge.conf"; \
	    install $$m $(B)/imapmerge.conf.sample $(ETC)/imapmerge.conf; \
	fi
	$(INSTALL_SED) conf/imapmerge.service >$(B)/imapmerge.service
	install -m 0644 $(B)/imapmerge.service \
	    $(DESTDIR)$(SYSTEMDUNITDIR)/imapmerge.service

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/imapmerge \
	    $(DESTDIR)$(MANDIR)/man8/imapmerge.8 \
	    $(DESTDIR)$(MANDIR)/man5/imapmerge.conf.5 \
	    $(ETC)/imapmerge.conf.sample \
	    $(DESTDIR)$(SYSTEMDUNITDIR)/imapmerge.service

clean:
	rm -rf build

-include $(shell find $(B) -name '*.d' 2>/dev/null)
