# Thin wrapper around Meson. Every target installs missing Debian packages first.
BUILD      ?= build
ASAN_BUILD ?= build-asan
REL_BUILD  ?= build-release
FUZZ_BUILD ?= build-fuzz
MESON      ?= meson
B          ?=
FUZZ_SECONDS ?= 20

.PHONY: all deps check check-asan check-release check-slow demo bench fuzz fuzz-smoke format clean

all: $(BUILD)/build.ninja
	ninja -C $(BUILD)

deps:
	@scripts/deps.sh build

$(BUILD)/build.ninja: | deps
	$(MESON) setup $(BUILD) --buildtype=debugoptimized -Dwerror=true

$(ASAN_BUILD)/build.ninja: | deps
	$(MESON) setup $(ASAN_BUILD) --buildtype=debug -Dwerror=true -Dsanitize=true

$(FUZZ_BUILD)/build.ninja:
	@scripts/deps.sh fuzz
	CC=clang $(MESON) setup $(FUZZ_BUILD) --buildtype=debugoptimized -Dfuzz=true

check:
	@scripts/deps.sh check
	@$(MAKE) --no-print-directory all
	scripts/run-tests.sh $(BUILD)

check-asan:
	@scripts/deps.sh check
	@$(MAKE) --no-print-directory $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)
	scripts/run-tests.sh $(ASAN_BUILD)

# Compile only, at -O3: some warnings (maybe-uninitialized) appear only there.
check-release:
	@scripts/deps.sh build
	@[ -f $(REL_BUILD)/build.ninja ] || $(MESON) setup $(REL_BUILD) --buildtype=release -Dwerror=true
	ninja -C $(REL_BUILD)

check-slow:
	@scripts/deps.sh check
	@$(MAKE) --no-print-directory all
	scripts/run-tests.sh $(BUILD) slow

demo:
	@scripts/deps.sh demo
	@$(MAKE) --no-print-directory all
	scripts/demo.sh $(BUILD)

bench:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory all
	scripts/bench.sh $(BUILD) $(B)

fuzz: $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD)
	scripts/fuzz.sh $(FUZZ_BUILD) $(or $(FUZZ_TIME),300)

fuzz-smoke: $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD)
	scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

format:
	find src tests bench guest -name '*.[ch]' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
