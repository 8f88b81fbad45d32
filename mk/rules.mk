# SPDX-License-Identifier: Apache-2.0
# Shared build rules. Components do not need their own Makefile: a new
# agent/*.c joins libvakt, a new tools/*.c joins the vakt CLI, a new
# tests/unit/test_*.c or tests/bpf/test_*.c is a test binary, a new
# bpf/*.bpf.c gets an object and a skeleton, a new tests/fuzz/fuzz_*.c a
# libFuzzer target.

.DELETE_ON_ERROR:
.SUFFIXES:
.DEFAULT_GOAL := all

V ?= 0
ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

BUILD ?= build
CC ?= gcc
CLANG ?= clang
BPFTOOL ?= bpftool
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo unknown)

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wundef -Wpointer-arith -Wcast-qual -Wnull-dereference \
	-Wno-missing-field-initializers
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 $(WARN) -fno-strict-aliasing -D_GNU_SOURCE \
	-DVAKT_VERSION='"$(VERSION)"' -Iinclude -Iagent -I$(BUILD) -MMD -MP
LDLIBS := -lbpf -lelf -lz -lmnl -ljansson -lcurl -lyaml -lm
TEST_LDLIBS := -lcmocka

BPF_CFLAGS := -O2 -g -target bpf -mcpu=v3 -D__TARGET_ARCH_x86 -Wall -Werror \
	-Iinclude -I/usr/include/x86_64-linux-gnu

LIB_SRCS := $(filter-out agent/vaktd.c,$(wildcard agent/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
LIB := $(BUILD)/libvakt.a
BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(BPF_SRCS:bpf/%.bpf.c=$(BUILD)/bpf/%.bpf.o)
SKELS := $(BPF_SRCS:bpf/%.bpf.c=$(BUILD)/%.skel.h)
TOOL_SRCS := $(wildcard tools/*.c)
TOOL_OBJS := $(TOOL_SRCS:%.c=$(BUILD)/%.o)
TESTLIB_SRCS := $(wildcard tests/lib/*.c)
TESTLIB_OBJS := $(TESTLIB_SRCS:%.c=$(BUILD)/%.o)
TESTLIB := $(BUILD)/libvakttest.a
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:%.c=$(BUILD)/%)
BPFTEST_SRCS := $(wildcard tests/bpf/test_*.c)
BPFTEST_BINS := $(BPFTEST_SRCS:%.c=$(BUILD)/%)
BENCH_SRCS := $(wildcard bench/bench_*.c)
BENCH_BINS := $(BENCH_SRCS:%.c=$(BUILD)/%)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:%.c=$(BUILD)/%)
VAKTD := $(BUILD)/vaktd
VAKT := $(BUILD)/vakt

.PHONY: all test test-run check bench bench-run demo demo-run deps clean fuzz
all: $(VAKTD) $(VAKT) $(BPF_OBJS)

# BPF objects and skeletons; userspace objects may include any skeleton.
$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(wildcard include/vakt/*.h) $(wildcard bpf/*.h)
	$(call msg,BPF,$@)
	@mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@

$(BUILD)/%.o: %.c | $(SKELS)
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(TESTLIB): $(TESTLIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^ $(if $^,,&& ar rcs $@)

$(VAKTD): $(BUILD)/agent/vaktd.o $(LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(VAKT): $(TOOL_OBJS) $(LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# libvakt.a again after libvakttest.a: test helpers may use library code the test itself does not.
$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(LIB) $(TESTLIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LIB) $(LDLIBS) $(TEST_LDLIBS)

$(BUILD)/tests/bpf/%: $(BUILD)/tests/bpf/%.o $(LIB) $(TESTLIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LIB) $(LDLIBS) $(TEST_LDLIBS)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIB) $(TESTLIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LIB) $(LDLIBS)

# The verdict header must build for BPF even before any program uses it.
$(BUILD)/verdict_check.bpf.o: tests/bpf/verdict_check.bpf.c $(wildcard include/vakt/*.h)
	$(call msg,BPF,$@)
	@mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# libFuzzer targets: the library rebuilt with clang, ASan and UBSan.
FUZZ_CFLAGS := -O1 -g -std=gnu11 -D_GNU_SOURCE -DVAKT_VERSION='"fuzz"' -Iinclude -Iagent \
	-I$(BUILD) -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
$(BUILD)/fuzz/%.o: %.c | $(SKELS)
	@mkdir -p $(@D)
	$(call msg,FUZZCC,$@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -c $< -o $@
$(BUILD)/tests/fuzz/%: $(BUILD)/fuzz/tests/fuzz/%.o $(LIB_SRCS:%.c=$(BUILD)/fuzz/%.o)
	$(call msg,LINK,$@)
	@mkdir -p $(@D)
	$(Q)$(CLANG) -fsanitize=fuzzer,address,undefined -o $@ $^ $(LDLIBS)

fuzz: $(FUZZ_BINS)

TEST_BINS := $(UNIT_BINS) $(BPFTEST_BINS) $(FUZZ_BINS) $(BUILD)/verdict_check.bpf.o

# test, bench and demo install what they need first (as root), then build.
test: deps
	$(Q)$(MAKE) --no-print-directory test-run
test-run: all $(TEST_BINS)
	$(Q)BUILD=$(BUILD) tests/run.sh

bench: deps
	$(Q)$(MAKE) --no-print-directory bench-run
bench-run: all $(BENCH_BINS)
	$(Q)BUILD=$(BUILD) bench/run.sh

demo: deps
	$(Q)$(MAKE) --no-print-directory demo-run
demo-run: all
	$(Q)BUILD=$(BUILD) tools/demo.sh

deps:
	$(Q)tools/install-deps.sh

CHECK_SRCS := $(LIB_SRCS) agent/vaktd.c $(TOOL_SRCS)
check: $(SKELS)
	$(call msg,TIDY,$(CHECK_SRCS))
	@# One file per run: clang-tidy 14 carries va_list state across files
	@# and then reports uninitialized va_lists in correct code.
	$(Q)printf '%s\n' $(CHECK_SRCS) | xargs -P$$(nproc) -I{} clang-tidy --quiet {} -- \
		-std=gnu11 -D_GNU_SOURCE -DVAKT_VERSION='"check"' -Iinclude -Iagent -I$(BUILD) \
		2>/dev/null
	$(call msg,CPPCHECK,$(CHECK_SRCS))
	$(Q)cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
		--inline-suppr --suppress=missingIncludeSystem -D__GNUC__ -D_GNU_SOURCE \
		-Iinclude -Iagent -I$(BUILD) $(CHECK_SRCS)

clean:
	$(Q)rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
