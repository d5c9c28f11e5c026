# toyota2mqtt - see README.md. The two commands a fresh machine needs are
# `make run` and `make test`; both install missing Debian packages first.

VERSION  := 0.1.0
PREFIX   ?= /usr/local
DESTDIR  ?=
BUILD    ?= build
CC       ?= cc
SAN      ?= 0

# Debian packages the build, the demo and the tests need.
DEB_PKGS := build-essential pkg-config libpaho-mqtt-dev libcurl4-openssl-dev \
            libcjson-dev libconfig-dev libmicrohttpd-dev libsystemd-dev \
            mosquitto mosquitto-clients python3 openssl valgrind \
            clang libclang-rt-14-dev

WARN     := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes
CFLAGS   ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -DT2M_VERSION=\"$(VERSION)\" $(WARN) $(CFLAGS) -Isrc -MMD -MP
ifeq ($(SAN),1)
ALL_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
SAN_LDFLAGS := -fsanitize=address,undefined
endif

PKGCONF      := pkg-config
BRIDGE_LIBS  = $(shell $(PKGCONF) --libs libcurl libcjson libconfig libsystemd 2>/dev/null) -lpaho-mqtt3as -lpthread -lm
SIM_LIBS     = $(shell $(PKGCONF) --libs libmicrohttpd libcjson 2>/dev/null) -lpthread -lm

BRIDGE_SRC := $(filter-out src/main.c,$(wildcard src/*.c))
BRIDGE_OBJ := $(BRIDGE_SRC:src/%.c=$(BUILD)/obj/%.o)
SIM_SRC    := $(wildcard src/sim/*.c)
SIM_OBJ    := $(SIM_SRC:src/sim/%.c=$(BUILD)/obj/sim/%.o)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)

.PHONY: all deps run test unit bench fuzz install uninstall clean check-deps
all: $(BUILD)/toyota2mqtt $(BUILD)/toyota2mqtt-sim

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/obj/sim/%.o: src/sim/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/libt2m.a: $(BRIDGE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/toyota2mqtt: $(BUILD)/obj/main.o $(BUILD)/libt2m.a
	$(CC) $(SAN_LDFLAGS) -o $@ $^ $(BRIDGE_LIBS)

$(BUILD)/toyota2mqtt-sim: $(SIM_OBJ)
	$(CC) $(SAN_LDFLAGS) -o $@ $^ $(SIM_LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libt2m.a tests/testhelp.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests -o $@ $< $(BUILD)/libt2m.a $(SAN_LDFLAGS) $(BRIDGE_LIBS)

unit: $(UNIT_BIN)

# Installs the Debian packages that are missing, and only those.
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

run: deps all
	@bash contrib/run-demo.sh $(BUILD)

# The whole suite, built with AddressSanitizer and UndefinedBehaviorSanitizer.
test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory BUILD=build/san SAN=1 all unit
	@bash tests/run.sh build/san

bench: deps all
	@python3 tests/bench/bench.py $(BUILD)

fuzz: deps
	@bash tests/fuzz/run.sh $(or $(FUZZ_SECONDS),60)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/doc/toyota2mqtt $(DESTDIR)/etc/toyota2mqtt
	install -m 0755 $(BUILD)/toyota2mqtt $(BUILD)/toyota2mqtt-sim $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/toyota2mqtt/
	install -m 0640 conf/toyota2mqtt.conf $(DESTDIR)$(PREFIX)/share/doc/toyota2mqtt/toyota2mqtt.conf.example
	[ -e $(DESTDIR)/etc/toyota2mqtt/toyota2mqtt.conf ] || install -m 0640 conf/toyota2mqtt.conf $(DESTDIR)/etc/toyota2mqtt/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/toyota2mqtt $(DESTDIR)$(PREFIX)/bin/toyota2mqtt-sim
	rm -rf $(DESTDIR)$(PREFIX)/share/doc/toyota2mqtt

clean:
	rm -rf build

-include $(wildcard $(BUILD)/obj/*.d $(BUILD)/obj/sim/*.d $(BUILD)/tests/*.d)
