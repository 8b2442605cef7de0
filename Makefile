# The two commands a new machine needs: `make demo` and `make test`. Both install what is missing.
PRESET ?= release
BUILD_DIR := build/$(PRESET)
CTEST_JOBS ?= 2

.PHONY: all deps configure build test unit integration demo demo-ha format lint clean bench soak tsan system-test

all: build

deps:
	./deploy/install-deps.sh

configure: deps
	cmake --preset $(PRESET)

build: configure
	cmake --build --preset $(PRESET)

# Every test, unit and integration, under AddressSanitizer and UBSan (TEST_PRESET, default asan:
# about as fast as the release run, since the integration tests mostly wait on their peers),
# after the shipped binaries of the release build (what `make demo` and the package use) compiled
# with -Werror too; the release build of the tests is left out to keep CI near 20 minutes.
# CI runs this through .ci/run. TEST_PRESET=release runs the suite on the release build instead.
TEST_PRESET ?= asan
SHIPPED := demail-gatewayd demailctl demail-card demail-certpromote demail-sim
test: configure
	cmake --build --preset $(PRESET) --target $(SHIPPED)
	cmake --preset $(TEST_PRESET)
	cmake --build --preset $(TEST_PRESET)
	ctest --preset $(TEST_PRESET) -j $(CTEST_JOBS)

unit: build
	ctest --preset $(PRESET) -j $(CTEST_JOBS) -L unit

integration: build
	ctest --preset $(PRESET) -j $(CTEST_JOBS) -L integration

demo: build
	./deploy/demo.sh $(BUILD_DIR)

# Redundancy: a real Postfix relaying to two gateways, each with its own simulated card, one
# provider with the fetch lease; HA_MESSAGES (500) messages out (every tenth asking for a
# Versandbestätigung) and HA_INBOUND (200) in while the first gateway is killed, loses its card and
# loses its provider connection in turn. Every outbound message at the provider exactly once, every
# inbound one delivered (at most the one duplicate a kill -9 can cause), every confirmation at its
# sender; prints the failover and failback times and the duplicates
# (tests/gateway/e2e/ha_failover.sh, about 3 minutes).
demo-ha: build
	DEMAIL_BUILD_DIR=$(abspath $(BUILD_DIR)) DEMAIL_SOURCE_DIR=$(CURDIR) ./tests/gateway/e2e/ha_failover.sh

format:
	git ls-files '*.cpp' '*.h' | xargs clang-format -i

lint: configure
	./tests/lint/clang-tidy.sh $(BUILD_DIR)

clean:
	rm -rf build

# The Debian package (build/deb/demail-gateway_<version>_amd64.deb).
deb: build
	./deploy/build-deb.sh build/$(PRESET) build/deb

# The package proven in a booted Debian 12 (never part of `make test`; tests/system/README.md): the
# .deb of this tree, installed as an upgrade of the package of SYSTEM_TEST_PREV with mail queued,
# run as shipped under systemd in systemd-nspawn. Needs root; the first run builds the root file
# system (build/nspawn-rootfs, from Debian's archive: network) and the previous package
# (build/system-test), later runs reuse both: about a minute then.
SYSTEM_TEST_PREV ?= a649f4a
system-test: configure
	./tests/system/install-deps.sh
	cmake --build --preset $(PRESET) --target $(SHIPPED)
	deb=$$(./deploy/build-deb.sh build/$(PRESET) build/deb) && \
	  ./tests/system/system-test.sh build/$(PRESET) "$$deb" $(SYSTEM_TEST_PREV)

# Fuzzing (not part of `make test`, whose fuzz.* tests replay the committed corpora):
# clang + libFuzzer, every target for FUZZ_SECONDS (default 60) on a scratch copy of its corpus.
FUZZ_SECONDS ?= 60
fuzz: deps
	CC=clang CXX=clang++ cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDEMAIL_LIBFUZZER=ON
	cmake --build build/fuzz -j2 --target fuzz_smtp_command fuzz_smtp_line fuzz_message fuzz_apdu_tlv fuzz_dispatch_state fuzz_spool_record fuzz_provider_json fuzz_provider_signature
	./tests/fuzz/run.sh build/fuzz $(FUZZ_SECONDS)

# Benchmarks (never part of `make test`): the intake side by side with Postfix, resources, end to
# end through the simulated card and provider, and a perf profile of the daemon. Tables on stdout,
# raw data and text in BENCH_OUT, the gnuplot PNGs in BENCH_PLOTS. About 25 minutes on 2 cores;
# tests/bench/README.md says what each one measures. Run it on an otherwise idle machine.
BENCH_OUT ?= build/bench
BENCH_PLOTS ?= docs/perf
bench: build
	./tests/bench/intake-matrix.sh $(BUILD_DIR) $(BENCH_OUT)
	./tests/bench/tls-connect.sh $(BUILD_DIR) $(BENCH_OUT)
	./tests/bench/rounds.sh $(BUILD_DIR) $(BENCH_OUT)
	./tests/bench/admission.sh $(BUILD_DIR) $(BENCH_OUT)
	./tests/bench/resources.sh $(BUILD_DIR) $(BENCH_OUT)
	./tests/bench/e2e-bench.sh $(BUILD_DIR) | tee $(BENCH_OUT)/e2e.txt
	./tests/bench/profile.sh $(BUILD_DIR) $(BENCH_OUT)
	./tests/bench/plot.sh $(BENCH_OUT)/intake.tsv $(BENCH_PLOTS)

# The long crash and fault suites: SOAK_MINUTES (30) of crash runs (SOAK_ROUNDS kills each, 40)
# alternating with fault runs; stops at the first message lost or sent twice.
soak: build
	./tests/reliability/soak.sh $(BUILD_DIR)

# ThreadSanitizer over the tests of the concurrent parts: the SMTP server and its sessions, the
# dispatcher's lanes and parked cache, the evidence archive's group commit, the provider
# connection pool against the simulator, the card monitor, health and metrics, and gatewayd itself
# in the end-to-end and fault suites (a race in the daemon or the simulator aborts it:
# halt_on_error). About 15 minutes.
TSAN_TESTS ?= ^(smtp\.|archive\.|gateway\.(dispatch|health|inbound|adapters|e2e)|smartcard\.|connector\.transport\.sim|reliability\.provider)
tsan: deps
	cmake --preset tsan
	cmake --build --preset tsan
	ctest --preset tsan -j $(CTEST_JOBS) -R '$(TSAN_TESTS)'
