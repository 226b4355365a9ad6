# The two commands of README.md: `make run` and `make test`.
# Everything they need is installed by scripts/ (idempotent).
BUILD_DIR ?= build
ARGS ?=

.PHONY: deps build run test test-cpp test-python format lint bench clean install deb

deps:
	bash scripts/install-deps.sh

build: deps
	bash scripts/build.sh $(BUILD_DIR)

# Builds and starts the daemon on 127.0.0.1:8000 on local GPU discovery, with
# the ledger in data/ and logs in logs/. For a demo on a machine without GPUs:
#   make run ARGS="--inventory examples/cluster-3node.yaml"

run: build
	$(BUILD_DIR)/gpurm serve $(ARGS)

test: build
	bash scripts/test.sh $(BUILD_DIR)

test-cpp: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j2

test-python: build
	bash scripts/test-python.sh

format:
	clang-format -i $$(git ls-files 'src/*.cc' 'src/*.h' 'tests/*.cc' 'tests/*.h' 'bench/*.cc')

lint: build
	bash scripts/lint.sh $(BUILD_DIR)

bench: build
	bash bench/run

# Installs the binary, /etc/gpurm/gpu_config.yaml, the systemd unit, the man
# page and shell completions under PREFIX (etc/ under PREFIX unless PREFIX is
# /usr); DESTDIR stages the tree elsewhere, as packagers do.
PREFIX ?= /usr/local
install: build
	DESTDIR=$(DESTDIR) cmake --install $(BUILD_DIR) --prefix $(PREFIX)

# The Debian package, from the same install step: $(BUILD_DIR)/gpurm_VERSION_ARCH.deb
deb: build
	nice -n 10 bash scripts/make-deb.sh $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR)
