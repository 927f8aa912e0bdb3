# stepop: `make` builds build/stepop; `make test` runs every test; `make help` lists targets.
VERSION := 0.1.0
PREFIX ?= /usr/local
DESTDIR ?=
CC ?= cc
PKG_CONFIG ?= pkg-config

Q := $(if $(V),,@)
PKGS := libcurl libarchive libcjson zlib libcrypto libzstd expat yaml-0.1
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wformat=2 -Wno-format-nonliteral
BASE_CFLAGS := -std=c11 $(WARN) -D_FILE_OFFSET_BITS=64 -D_GNU_SOURCE -DSTEPOP_VERSION=\"$(VERSION)\" -pthread
CFLAGS ?= -O2 -g
PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
LIBS = $(GPU_LIBS) $(PKG_LIBS) -pthread -lm

# GPU backend: CUDA when a toolkit is at CUDA_HOME (CUDA=auto, the default) or CUDA=1 demands one;
# CUDA=0, or no toolkit, builds gpu/gpu_none.c, whose `stepop gpu` says it has no CUDA.
# GPU_OBJ and GPU_LIBS are what any link of the library objects adds (the static build too).
CUDA ?= auto
CUDA_HOME ?= /usr/local/cuda
NVCC ?= $(CUDA_HOME)/bin/nvcc
ifeq ($(CUDA),0)
GPU_BACKEND := none
else ifneq ($(wildcard $(NVCC)),)
ifneq ($(wildcard $(CUDA_HOME)/lib64/libcudart_static.a),)
GPU_BACKEND := cuda
endif
endif
GPU_BACKEND ?= none
ifeq ($(CUDA)$(GPU_BACKEND),1none)
$(error CUDA=1 but no CUDA toolkit at CUDA_HOME=$(CUDA_HOME) (need bin/nvcc and lib64/libcudart_static.a))
endif
ifeq ($(GPU_BACKEND),cuda)
# Real code for every architecture this nvcc knows, plus PTX of the newest for JIT on later cards.
GPU_ARCHS := $(shell $(NVCC) --list-gpu-arch 2>/dev/null | sed -n 's/^compute_\([0-9]*\)$$/\1/p' | sort -n)
GPU_ARCH_NEWEST := $(lastword $(GPU_ARCHS))
GENCODE := $(foreach a,$(GPU_ARCHS),-gencode arch=compute_$(a),code=sm_$(a)) \
           -gencode arch=compute_$(GPU_ARCH_NEWEST),code=compute_$(GPU_ARCH_NEWEST)
# Without exceptions and guarded statics the object needs no libstdc++, so links stay C-only
# (kernels are launched from one thread).
NVCC_FLAGS := -O3 -std=c++17 --threads 0 -Werror all-warnings \
              -Xcompiler -Wall,-Wextra,-fno-exceptions,-fno-threadsafe-statics
GPU_CFLAGS := -I$(CUDA_HOME)/include
GPU_OBJ := build/obj/gpu/gpu_kernels.o
GPU_LIBS := -L$(CUDA_HOME)/lib64 -lcudart_static -ldl -lrt
GPU_EXCLUDE := gpu/gpu_none.c
$(info   GPU     CUDA backend: $(NVCC), architectures $(GPU_ARCHS) + PTX $(GPU_ARCH_NEWEST))
else
GPU_OBJ :=
GPU_LIBS :=
GPU_EXCLUDE := gpu/gpu_cuda.c
$(info   GPU     no-CUDA backend (CUDA=$(CUDA), CUDA_HOME=$(CUDA_HOME)): 'stepop gpu' will report cuda_not_built)
endif

SRC := $(filter-out $(GPU_EXCLUDE),$(wildcard runtime/*.c cloud/*.c cloud/*/*.c artifacts/*.c entrypoint/*.c flavors/*.c flavors/*/*.c gpu/*.c))
MAIN_SRC := runtime/main.c
LIB_SRC := $(filter-out $(MAIN_SRC),$(SRC))
OBJ := $(LIB_SRC:%.c=build/obj/%.o)
ASAN_OBJ := $(LIB_SRC:%.c=build/asan/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=build/tests/%)
ASAN_UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=build/asan/tests/%)
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

.PHONY: all deps test unit-test integration-test install clean help demo check-deps bench static fuzz fuzz-build tsan \
	man completion
all: build/stepop

help:
	@echo "make            build build/stepop"
	@echo "make deps       install the Debian packages the build and tests need (apt-get)"
	@echo "make test       build, then unit tests (plain and ASan/UBSan) and integration tests"
	@echo "make demo       a real step end to end (local flavor, file store)"
	@echo "make bench      the benchmarks against curl, tar, pigz, zstd, aws cli, rclone (docs/benchmarks.md)"
	@echo "make static     build build/stepop-static, static except glibc (docs/static.md)"
	@echo "make fuzz       build the libFuzzer targets (clang) and run each for FUZZ_SECONDS (docs/testing.md)"
	@echo "make tsan       build build/tsan/stepop (ThreadSanitizer) and run tests/integration/tsan.sh"
	@echo "make man        build the man pages into build/man/ (needs scdoc and python3)"
	@echo "make install    install stepop, the stepop-submit link, completions and man pages (PREFIX, DESTDIR)"
	@echo "make clean      remove build/"

deps:
	@./tools/deps.sh

check-deps:
	@$(PKG_CONFIG) --exists $(PKGS) || { echo "missing libraries: run 'make deps' (needs $(PKGS))" >&2; exit 1; }

# The commit is written to a header only when it changes, so a new commit relinks, not rebuilds.
build/commit.h: FORCE
	@mkdir -p build
	@c=$$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown); \
	 d=$$(git diff --quiet HEAD 2>/dev/null || echo -dirty); \
	 line="#define STEPOP_COMMIT \"$$c$$d\""; \
	 [ -f $@ ] && [ "$$(cat $@)" = "$$line" ] || echo "$$line" > $@
FORCE:

# Links depend on the backend chosen, so switching CUDA=0 and back relinks.
build/gpu-backend: FORCE
	@mkdir -p build
	@[ -f $@ ] && [ "$$(cat $@)" = "$(GPU_BACKEND)" ] || echo "$(GPU_BACKEND)" > $@

build/obj/runtime/version.o build/asan/runtime/version.o build/static/obj/runtime/version.o: build/commit.h
build/obj/runtime/version.o build/asan/runtime/version.o build/static/obj/runtime/version.o: CPPFLAGS += -include build/commit.h

build/obj/gpu/gpu_cuda.o build/asan/gpu/gpu_cuda.o build/static/obj/gpu/gpu_cuda.o build/fuzz/obj/gpu/gpu_cuda.o build/tsan/gpu/gpu_cuda.o: CPPFLAGS += $(GPU_CFLAGS)

# One object serves the plain and the ASan links: device code is not instrumented anyway.
build/obj/gpu/%.o: gpu/%.cu
	@mkdir -p $(dir $@)
	@echo "  NVCC    $@"
	$(Q)$(NVCC) $(NVCC_FLAGS) $(GENCODE) -MMD -MP -MF $(@:.o=.d) -c $< -o $@

build/obj/%.o: %.c | check-deps
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)$(CC) $(BASE_CFLAGS) $(CFLAGS) $(CPPFLAGS) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

build/asan/%.o: %.c | check-deps
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)$(CC) $(BASE_CFLAGS) -O1 -g $(SAN_FLAGS) $(CPPFLAGS) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

build/stepop: build/obj/runtime/main.o $(OBJ) $(GPU_OBJ) build/gpu-backend
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBS)
	@ln -sf stepop build/stepop-submit

build/tests/%: tests/unit/%.c tests/unit/tap.h tests/unit/http_server.h $(OBJ) $(GPU_OBJ) build/gpu-backend
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(BASE_CFLAGS) $(CFLAGS) $(PKG_CFLAGS) -o $@ $< $(OBJ) $(GPU_OBJ) $(LIBS)

build/asan/tests/%: tests/unit/%.c tests/unit/tap.h tests/unit/http_server.h $(ASAN_OBJ) $(GPU_OBJ) build/gpu-backend
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(BASE_CFLAGS) -O1 -g $(SAN_FLAGS) $(PKG_CFLAGS) -o $@ $< $(ASAN_OBJ) $(GPU_OBJ) $(LIBS)

build/asan/stepop: build/asan/runtime/main.o $(ASAN_OBJ) $(GPU_OBJ) build/gpu-backend
	@echo "  LD      $@"
	$(Q)$(CC) $(SAN_FLAGS) -o $@ $(filter %.o,$^) $(LIBS)

# The static binary (docs/static.md): the same sources against static libraries, glibc alone
# stays dynamic. tools/static-deps.sh builds what Debian ships no usable archive for (cached); the
# rest are Debian's own archives. STATIC_DEPS_RELEASE=NAME takes those sources from another
# release than the system's. GPU_OBJ and GPU_LIBS come from the CUDA build when it has one.
STATIC_DEPS := build/static-deps
STATIC_OBJ := $(LIB_SRC:%.c=build/static/obj/%.o) $(patsubst %.c,build/static/obj/%.o,$(wildcard runtime/static/*.c))
STATIC_LIBS = $(STATIC_DEPS)/lib/libcurl.a $(STATIC_DEPS)/lib/libarchive.a $(STATIC_DEPS)/lib/libcjson.a \
	$(foreach l,ssl crypto z zstd lzma bz2 expat yaml nghttp2,$(shell $(CC) -print-file-name=lib$(l).a))

static:
	@CC="$(CC)" tools/static-deps.sh $(STATIC_DEPS) $(STATIC_DEPS_RELEASE)
	@$(MAKE) --no-print-directory build/stepop-static
	@tools/static-check.sh build/stepop-static

# The static libraries' own headers come first: they may differ from the -dev packages' headers.
# STEPOP_STATIC_BUILD tells the code it is the static binary (the docker flavor injects itself).
build/static/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)$(CC) $(BASE_CFLAGS) $(CFLAGS) $(CPPFLAGS) -DSTEPOP_STATIC_BUILD=1 -I$(STATIC_DEPS)/include -MMD -MP -c $< -o $@

build/stepop-static: build/static/obj/runtime/main.o $(STATIC_OBJ) $(GPU_OBJ) $(STATIC_LIBS)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -static-libgcc -Wl,--as-needed -o $@ build/static/obj/runtime/main.o $(STATIC_OBJ) \
		$(GPU_OBJ) $(STATIC_LIBS) $(GPU_LIBS) -ldl -lpthread -lm

# Test tools: small programs the integration tests drive (tests/tools/*.c), built with ASan/UBSan.
TOOL_BIN := $(patsubst tests/tools/%.c,build/tests/tools/%,$(wildcard tests/tools/*.c))
build/tests/tools/%: tests/tools/%.c $(ASAN_OBJ) $(GPU_OBJ) build/gpu-backend
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(BASE_CFLAGS) -O1 -g $(SAN_FLAGS) $(PKG_CFLAGS) -o $@ $< $(ASAN_OBJ) $(GPU_OBJ) $(LIBS)

unit-test: $(UNIT_BIN) $(ASAN_UNIT_BIN)
	@tests/run.sh unit

integration-test: build/stepop build/asan/stepop $(TOOL_BIN)
	@tests/run.sh integration

test: build/stepop build/asan/stepop $(UNIT_BIN) $(ASAN_UNIT_BIN) $(TOOL_BIN)
	@tests/run.sh all

# Fuzzing (docs/testing.md#fuzzing): libFuzzer targets tests/fuzz/fuzz_*.c, built with Debian's
# clang and its libFuzzer (libclang-rt-14-dev) against the library objects compiled with the same
# sanitizers; each runs FUZZ_SECONDS from its seed corpus tests/fuzz/corpus/<target>/ (read only:
# new inputs go to build/fuzz/corpus/<target>/). Crashes are written to build/fuzz/crashes/.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_FLAGS := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
              -fno-sanitize-recover=undefined
FUZZ_OBJ := $(LIB_SRC:%.c=build/fuzz/obj/%.o)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)

build/fuzz/obj/%.o: %.c | check-deps
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)$(FUZZ_CC) $(BASE_CFLAGS) $(FUZZ_FLAGS) $(CPPFLAGS) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

build/fuzz/obj/runtime/version.o: build/commit.h
build/fuzz/obj/runtime/version.o: CPPFLAGS += -include build/commit.h

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_OBJ) $(GPU_OBJ) build/gpu-backend
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(FUZZ_CC) $(BASE_CFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer $(PKG_CFLAGS) -o $@ $< $(FUZZ_OBJ) $(GPU_OBJ) $(LIBS)

# Kept: the objects are prerequisites of a pattern rule only, which makes them intermediate files
# that make would delete after each link.
.SECONDARY: $(FUZZ_OBJ)

fuzz-build: $(FUZZ_BIN)

fuzz: $(FUZZ_BIN)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(FUZZ_BIN)

# ThreadSanitizer (docs/testing.md#threadsanitizer): stepop built with -fsanitize=thread, run
# through the threaded paths by tests/integration/tsan.sh.
TSAN_FLAGS := -O1 -g -fsanitize=thread -fno-omit-frame-pointer
TSAN_OBJ := $(LIB_SRC:%.c=build/tsan/%.o)

build/tsan/%.o: %.c | check-deps
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)$(CC) $(BASE_CFLAGS) $(TSAN_FLAGS) $(CPPFLAGS) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

build/tsan/runtime/version.o: build/commit.h
build/tsan/runtime/version.o: CPPFLAGS += -include build/commit.h

build/tsan/stepop: build/tsan/runtime/main.o $(TSAN_OBJ) $(GPU_OBJ) build/gpu-backend
	@echo "  LD      $@"
	$(Q)$(CC) $(TSAN_FLAGS) -o $@ $(filter %.o,$^) $(LIBS)

tsan: build/tsan/stepop
	@bash tests/integration/tsan.sh

demo: build/stepop
	@tools/demo.sh

build/bench/gen_data: bench/gen_data.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=c11 -O2 $(WARN) -o $@ $< -lm

# The shaping proxy of the bench's "real link" cases (bench/shaper.c); tests/unit/test_shaper.c
# builds the same source into a unit test.
build/bench/shaper: bench/shaper.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=c11 -O2 $(WARN) -pthread -o $@ $<

build/tests/test_shaper build/asan/tests/test_shaper: bench/shaper.c

# Benchmarks (docs/benchmarks.md): never part of `make test`.
bench: build/stepop build/bench/gen_data build/bench/shaper
	@tools/deps.sh bench
	@$(MAKE) --no-print-directory static
	@bench/run.sh

# Man pages (docs/testing.md#man-pages-and-completion): tools/man.sh writes scdoc sources from
# the built binary's command and option tables and --help texts, and from docs/manifest.md and
# docs/flavors.md for the (5) pages; scdoc renders them into build/man/. Optional for `make`;
# `make install` installs them when scdoc is present and says so when it is not.
SCDOC ?= scdoc
HAVE_SCDOC := $(shell command -v $(SCDOC) 2>/dev/null)
# The pages' date is the commit's, so a rebuild of one commit gives the same pages.
MAN_DATE := $(shell git log -1 --format=%ct 2>/dev/null)

man: build/man/.stamp

build/man/.stamp: build/stepop tools/man.sh tools/md2scd.py docs/manifest.md docs/flavors.md
	@command -v $(SCDOC) >/dev/null || { echo "make man needs scdoc (Debian: apt-get install scdoc)" >&2; exit 1; }
	@echo "  MAN     build/man"
	@rm -rf build/man && mkdir -p build/man/src
	$(Q)tools/man.sh build/stepop build/man/src
	$(Q)for f in build/man/src/*.scd; do p=$${f##*/}; \
	    SOURCE_DATE_EPOCH=$${SOURCE_DATE_EPOCH:-$(MAN_DATE)} $(SCDOC) <$$f >build/man/$${p%.scd} || exit 1; done
	@touch $@

# Completion scripts, printed by the binary from the same tables its commands parse with.
completion: build/completion/.stamp

build/completion/.stamp: build/stepop
	@mkdir -p build/completion
	$(Q)build/stepop completion bash >build/completion/stepop
	$(Q)build/stepop completion zsh >build/completion/_stepop
	$(Q)build/stepop completion fish >build/completion/stepop.fish
	@touch $@

install: build/stepop build/completion/.stamp $(if $(HAVE_SCDOC),build/man/.stamp)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 build/stepop $(DESTDIR)$(PREFIX)/bin/stepop
	ln -sf stepop $(DESTDIR)$(PREFIX)/bin/stepop-submit
	install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/site-functions \
	    $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	install -m 0644 build/completion/stepop $(DESTDIR)$(PREFIX)/share/bash-completion/completions/stepop
	ln -sf stepop $(DESTDIR)$(PREFIX)/share/bash-completion/completions/stepop-submit
	install -m 0644 build/completion/_stepop $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_stepop
	install -m 0644 build/completion/stepop.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/stepop.fish
	ln -sf stepop.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/stepop-submit.fish
ifneq ($(HAVE_SCDOC),)
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5
	install -m 0644 build/man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0644 build/man/*.5 $(DESTDIR)$(PREFIX)/share/man/man5
else
	@echo "warning: scdoc not found: man pages not installed (apt-get install scdoc, then make install again)" >&2
endif

clean:
	rm -rf build

-include $(OBJ:.o=.d) $(ASAN_OBJ:.o=.d) $(FUZZ_OBJ:.o=.d) $(TSAN_OBJ:.o=.d) $(GPU_OBJ:.o=.d) $(STATIC_OBJ:.o=.d) build/obj/runtime/main.d build/static/obj/runtime/main.d
