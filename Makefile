# iotrules: `make` builds every binary into bin/, `make test` runs the suite
# (TAP under prove), `make asan` builds and runs it under ASan+UBSan.

CC      ?= cc
CFLAGS  ?= -O2 -g
override CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I. -I$(BUILD)/gen -pthread
override LDLIBS += -lnng -lrabbitmq -lcjson -lmosquitto -luuid -lcrypto -lpcre2-8 -lcurl -lrdkafka -lz -lm -pthread
BUILD   ?= build
BIN     ?= bin

LIB_SRC := $(wildcard common/*.c evaluate/sql/*.c evaluate/lib/*.c sinks/lib/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB     := $(BUILD)/libiotrules.a

# The sinks: one iotrules-sink-<stage> per row of common/actions.def
# whose sinks/<source>.c exists (elasticsearch and openSearch share one
# source).  The set of sources present goes into $(BUILD)/gen/sinks_built.h
# (rewritten only when it changes) so the loader knows what is built.
SINK_SOURCES := $(sort $(patsubst sinks/%.c,%,$(wildcard sinks/*.c)))
ACTION_ROWS  := $(shell awk -F'"' '/^ACTION/ { print $$4 ":" $$6 }' common/actions.def)
BUILT_ROWS   := $(foreach r,$(ACTION_ROWS),$(if $(filter $(lastword $(subst :, ,$(r))),$(SINK_SOURCES)),$(r)))
SINKS := $(foreach r,$(BUILT_ROWS),iotrules-sink-$(firstword $(subst :, ,$(r))))
PROGS := iotrules-sql iotrules-ingest iotrules-evaluate $(SINKS) iotrules-error-handler iotrules-supervisor iotrules
PROG_SRC_iotrules-sql             := tools/iotrules-sql.c
PROG_SRC_iotrules-ingest          := ingest/main.c
PROG_SRC_iotrules-evaluate        := evaluate/main.c
$(foreach r,$(BUILT_ROWS),$(eval PROG_SRC_iotrules-sink-$(firstword $(subst :, ,$(r))) := sinks/$(lastword $(subst :, ,$(r))).c))
PROG_SRC_iotrules-error-handler   := errorhandler/main.c
PROG_SRC_iotrules-supervisor      := supervisor/main.c supervisor/stats.c supervisor/metrics.c
PROG_SRC_iotrules                 := control/main.c

# The broker plugin: lib/ for the default build; other builds (BIN=bin-asan)
# keep theirs under their BIN, so that they never replace lib/'s.
PLUGIN := $(if $(filter bin,$(BIN)),lib,$(BIN)/lib)/iotrules-mosquitto.so

UNIT_SRC  := $(wildcard tests/unit/*_test.c)
UNIT_BINS := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# Test programs: tests/tools/<name>.c becomes $(BUILD)/tests/<name>.
TOOL_BINS := $(patsubst tests/tools/%.c,$(BUILD)/tests/%,$(wildcard tests/tools/*.c))

all: $(addprefix $(BIN)/,$(PROGS)) $(UNIT_BINS) $(BUILD)/bench/pubsub $(BUILD)/bench/relay $(BUILD)/bench/sql $(BUILD)/bench/hop $(TOOL_BINS) $(PLUGIN)

# The mosquitto plugin (plugin/iotrules-mosquitto.c): loaded into the
# broker, so built from position-independent objects of its own and linked
# only with what it uses (no NNG, nothing that starts a thread); the
# mosquitto_* functions it calls are the broker's own.
PLUGIN_SRC := plugin/iotrules-mosquitto.c common/journal.c common/envelope.c common/buf.c common/pubprops.c \
  evaluate/lib/topic.c
PLUGIN_OBJ := $(PLUGIN_SRC:%.c=$(BUILD)/pic/%.o)
$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -MMD -MP -c $< -o $@
$(PLUGIN): $(PLUGIN_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -shared -o $@ $^ -lz -luuid -lcrypto

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

SINKS_BUILT_H := $(BUILD)/gen/sinks_built.h
SINKS_BUILT_LINE := \#define IOTRULES_SINK_SOURCES " $(SINK_SOURCES) "
$(SINKS_BUILT_H): FORCE
	@mkdir -p $(dir $@)
	@echo '$(SINKS_BUILT_LINE)' | cmp -s - $@ || echo '$(SINKS_BUILT_LINE)' > $@
$(BUILD)/common/actions.o: $(SINKS_BUILT_H)

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

define prog_rule
$(BIN)/$(1): $(patsubst %.c,$(BUILD)/%.o,$(PROG_SRC_$(1))) $(LIB)
	@mkdir -p $(BIN)
	$$(CC) $$(CFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach p,$(PROGS),$(eval $(call prog_rule,$(p))))

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/relay: $(BUILD)/bench/relay.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ -lcjson -lmosquitto

$(BUILD)/bench/pubsub: $(BUILD)/bench/pubsub.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(TOOL_BINS): $(BUILD)/tests/%: $(BUILD)/tests/tools/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/sql: $(BUILD)/bench/sql.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/hop: $(BUILD)/bench/hop.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# The suite: the longest tests first (prove --timer, 2026-12-02: 50-110 s
# each under -j4), then the fault tests, then the rest, so that -j keeps
# both cores busy to the end instead of waiting on one long test started
# last.  Most tests spend their time waiting on servers and timers, so
# TEST_JOBS (4) runs more of them than there are cores.
TEST_JOBS ?= 4
SLOW_TESTS := tests/faults/amqp.t tests/faults/aws_outage.t tests/integration/sink_s3.t tests/integration/sink_dynamodb.t \
  tests/faults/outage.t tests/integration/sink_salesforce.t tests/integration/sink_cloudwatch.t \
  tests/integration/sink_sqs.t tests/integration/sink_timestream.t tests/integration/sink_sns.t \
  tests/faults/kafka_outage.t tests/integration/sink_iotevents.t tests/integration/sink_http.t
SUITE = $(SLOW_TESTS) $(filter-out $(SLOW_TESTS),$(wildcard tests/faults/*.t tests/integration/*.t))
test: all
	prove -v -j$(TEST_JOBS) $(SUITE) $(UNIT_BINS)

unit: all
	prove $(UNIT_BINS)

# The same suite under AddressSanitizer and UndefinedBehaviorSanitizer, in its
# own build and bin directories so a normal build is not disturbed.
asan:
	$(MAKE) BUILD=build-asan BIN=bin-asan \
	  CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined"
	IOTRULES_BIN=$(CURDIR)/bin-asan AWSCALL=$(CURDIR)/build-asan/tests/awscall HOP_TEST=$(CURDIR)/build-asan/tests/hop_test ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1 prove -j$(TEST_JOBS) $(SUITE) $(patsubst $(BUILD)/%,build-asan/%,$(UNIT_BINS))

# The unit, integration and fault tests under ThreadSanitizer, in
# build-tsan/ and bin-tsan/.  Every process writes its reports to
# build-tsan/logs/; the target fails if any report was written (whether or
# not the test noticed).  Suppressions (tests/tsan.supp) only for
# third-party libraries, each explained there.
#
# Left out: what runs a librdkafka producer.  librdkafka starts its threads
# with C11 thrd_create, which GCC 12's ThreadSanitizer does not intercept,
# so those threads have no TSan state and crash in its allocator (SEGV in
# SizeClassAllocator64LocalCache::Allocate, kafkaconf_test's first
# producer).  They run in `make test` and `make asan`; the target names
# them when it starts.
TSAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=thread
TSAN_NO_KAFKA := tests/integration/sink_kafka.t tests/faults/kafka_outage.t tests/integration/vpc.t \
  $(BUILD)/tests/kafkaconf_test
tsan:
	$(MAKE) BUILD=build-tsan BIN=bin-tsan CFLAGS="$(TSAN_FLAGS)"
	@rm -rf build-tsan/logs && mkdir -p build-tsan/logs
	@echo "tsan: left out (librdkafka's threads cannot run under TSan, see the Makefile): $(TSAN_NO_KAFKA)"
	IOTRULES_BIN=$(CURDIR)/bin-tsan AWSCALL=$(CURDIR)/build-tsan/tests/awscall \
	  TSAN_OPTIONS="log_path=$(CURDIR)/build-tsan/logs/tsan suppressions=$(CURDIR)/tests/tsan.supp halt_on_error=0" \
	  prove -j$(TEST_JOBS) $(filter-out $(TSAN_NO_KAFKA),$(wildcard $(SUITE))) \
	  $(patsubst $(BUILD)/%,build-tsan/%,$(filter-out $(TSAN_NO_KAFKA),$(UNIT_BINS)))
	@if grep -l "WARNING: ThreadSanitizer" build-tsan/logs/* 2>/dev/null; then \
	  cat build-tsan/logs/*; echo "tsan: the reports above"; exit 1; fi
	@echo "tsan: no report from any process"

# libFuzzer over SQL text + payload + template (tests/fuzz/sql_fuzz.c), with
# clang, ASan and UBSan; the library is rebuilt instrumented in build-fuzz/.
# Runs FUZZ_SECONDS (60) from the seeds in tests/fuzz/seeds plus whatever
# build-fuzz/corpus gathered before; findings are written to build-fuzz/.
FUZZ_SECONDS ?= 60
FUZZ_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
fuzz:
	@command -v clang > /dev/null || { echo "make fuzz needs clang (apt-get install clang)"; exit 1; }
	$(MAKE) BUILD=build-fuzz CC=clang CFLAGS="$(FUZZ_FLAGS)" build-fuzz/libiotrules.a
	clang $(FUZZ_FLAGS) -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I. -fsanitize=fuzzer \
	  -o build-fuzz/sql_fuzz tests/fuzz/sql_fuzz.c build-fuzz/libiotrules.a $(LDLIBS)
	@mkdir -p build-fuzz/corpus
	cd build-fuzz && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ./sql_fuzz -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	  corpus ../tests/fuzz/seeds

# The conformance corpus with bin/iotrules-sql under valgrind (memcheck,
# every leak kind an error): passes only if every case passes and valgrind
# reported nothing.
VG_LOG := $(BUILD)/valgrind/vg
valgrind: all
	@command -v valgrind > /dev/null || { echo "make valgrind needs valgrind (apt-get install valgrind)"; exit 1; }
	@rm -rf $(BUILD)/valgrind && mkdir -p $(BUILD)/valgrind
	VALGRIND_LOG=$(CURDIR)/$(VG_LOG) ../shared/tools/sql-conformance --bin tests/valgrind/iotrules-sql
	@if [ -n "$$(cat $(VG_LOG).* 2>/dev/null)" ]; then cat $(VG_LOG).*; echo "valgrind: reports above"; exit 1; fi
	@echo "valgrind: $$(ls $(VG_LOG).* | wc -l) runs, no error and no leak reported"

# 1,000,000 QoS 1 messages with a random stage killed -9 every 10 s
# (tests/soak/soak.sh; SOAK_COUNT, SOAK_KILL_S, SOAK_RATE).  Not in CI.
soak: all
	tests/soak/soak.sh

# The integration tests with every stage under valgrind memcheck
# (tests/valgrind/wrap), for uninitialised reads and invalid accesses.
# Passes if valgrind reported nothing; the tests' own verdicts are shown
# but not required (timing-bound checks, such as stopping within 5 s, do
# not hold at valgrind's speed).
# Two tests at a time: four brokers under valgrind at once made
# diskfull.t's 40,000 messages miss its 120 s wait (2026-12-02).
VG_JOBS ?= 2
# Every integration and fault test with its brokers under valgrind
# memcheck and the iotrules plugin loaded in each (tests/integration/lib.sh,
# run_broker): the plugin's memory errors would crash the broker.
valgrind-broker: all
	@command -v valgrind > /dev/null || { echo "needs valgrind (apt-get install valgrind)"; exit 1; }
	@rm -rf $(BUILD)/vg-broker && mkdir -p $(BUILD)/vg-broker
	IOTRULES_VALGRIND_BROKER=$(CURDIR)/$(BUILD)/vg-broker/vg prove -j$(VG_JOBS) $(filter %.t,$(SUITE)); \
	  rc=$$?; \
	  if [ -n "$$(cat $(BUILD)/vg-broker/vg.* 2>/dev/null)" ]; then cat $(BUILD)/vg-broker/vg.*; \
	    echo "valgrind: the reports above"; exit 1; fi; \
	  echo "valgrind: $$(ls $(BUILD)/vg-broker | wc -l) brokers with the plugin, no error reported"; exit $$rc

valgrind-pipeline: all
	@command -v valgrind > /dev/null || { echo "needs valgrind (apt-get install valgrind)"; exit 1; }
	@rm -rf $(BUILD)/vg-pipeline && mkdir -p $(BUILD)/vg-pipeline/logs
	tests/valgrind/wrap $(BUILD)/vg-pipeline/bin
	-VALGRIND_LOG=$(CURDIR)/$(BUILD)/vg-pipeline/logs/vg IOTRULES_BIN=$(CURDIR)/$(BUILD)/vg-pipeline/bin \
	  prove tests/integration/*.t
	@if [ -n "$$(cat $(BUILD)/vg-pipeline/logs/vg.* 2>/dev/null)" ]; then cat $(BUILD)/vg-pipeline/logs/vg.*; \
	  echo "valgrind: the reports above"; exit 1; fi
	@echo "valgrind: $$(ls $(BUILD)/vg-pipeline/logs | wc -l) processes, no error reported"

bench-aws: all
	bench/aws

bench-http: all
	bench/http

bench-kafka: all
	bench/kafka

bench: all
	bench/run
	$(BUILD)/bench/sql

clean:
	rm -rf build build-asan build-tsan build-fuzz bin bin-asan bin-tsan lib

.PHONY: FORCE all test unit asan tsan fuzz valgrind valgrind-broker valgrind-pipeline soak bench bench-aws bench-http bench-kafka clean
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# make install [PREFIX=/usr/local] [DESTDIR=]: the programs of $(BIN) into
# $(PREFIX)/bin, the man pages (man/) into $(PREFIX)/share/man, one
# ".so man1/iotrules-sink.1" page per sink binary built (so that `man
# iotrules-sink-kafka` works), and dist/iotrules.service with the bin
# directory filled in.  Units go to $(PREFIX)/lib/systemd/system, or
# /lib/systemd/system when PREFIX is /usr (Debian's place for packaged
# units).  The example config and rules go to /etc/iotrules only when
# absent: a reinstall never overwrites the administrator's files.
# `make uninstall` removes what install put in PREFIX and the unit, and
# leaves /etc/iotrules (the administrator's) alone.  NOBUILD=1 installs
# the programs of $(BIN) as they are, without making them first (the test
# installs bin-asan/ this way: make would relink it from build/).
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR    ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
MAN1 := $(wildcard man/*.1)
MAN5 := $(wildcard man/*.5)

install: $(if $(NOBUILD),,$(addprefix $(BIN)/,$(PROGS)))
	for p in $(PROGS); do install -D -m 0755 $(BIN)/$$p $(DESTDIR)$(BINDIR)/$$p || exit 1; done
	for m in $(MAN1); do install -D -m 0644 $$m $(DESTDIR)$(MANDIR)/man1/$${m#man/} || exit 1; done
	for m in $(MAN5); do install -D -m 0644 $$m $(DESTDIR)$(MANDIR)/man5/$${m#man/} || exit 1; done
	@mkdir -p $(BUILD)/dist
	echo '.so man1/iotrules-sink.1' > $(BUILD)/dist/sink.1
	for s in $(SINKS); do install -D -m 0644 $(BUILD)/dist/sink.1 $(DESTDIR)$(MANDIR)/man1/$$s.1 || exit 1; done
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' dist/iotrules.service.in > $(BUILD)/dist/iotrules.service
	install -D -m 0644 $(BUILD)/dist/iotrules.service $(DESTDIR)$(UNITDIR)/iotrules.service
	[ -e $(DESTDIR)$(SYSCONFDIR)/iotrules/config.json ] || \
	  install -D -m 0644 dist/config.json $(DESTDIR)$(SYSCONFDIR)/iotrules/config.json
	[ -e $(DESTDIR)$(SYSCONFDIR)/iotrules/rules ] || \
	  for r in examples/rules/*.json; do install -D -m 0644 $$r $(DESTDIR)$(SYSCONFDIR)/iotrules/rules/$${r##*/} || exit 1; done

uninstall:
	for p in $(PROGS); do rm -f $(DESTDIR)$(BINDIR)/$$p; done
	for m in $(MAN1) $(SINKS:%=%.1); do rm -f $(DESTDIR)$(MANDIR)/man1/$${m#man/}; done
	for m in $(MAN5); do rm -f $(DESTDIR)$(MANDIR)/man5/$${m#man/}; done
	rm -f $(DESTDIR)$(UNITDIR)/iotrules.service

.PHONY: install uninstall
