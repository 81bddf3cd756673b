# Front door. The README's two commands are scripts/demo.sh and scripts/test.sh; these targets
# call the same scripts.
ARCH ?= x86_64

.PHONY: deps kernel module initramfs test demo check scenarios clean-cache
deps:
	bash scripts/install-deps.sh
kernel module:
	bash scripts/build-kernel.sh $(ARCH)
test:
	bash scripts/test.sh
demo:
	bash scripts/demo.sh
check:
	cargo test --workspace
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
scenarios:
	RTMIRROR_ARCHES=$(ARCH) bash scripts/test.sh
clean-cache:
	rm -rf $${RTMIRROR_CACHE:-$$HOME/.cache/dm-rtmirror}/build
