#!/usr/bin/env bash
# Installs the Debian packages bpfnb needs when they are missing: graphviz (dot)
# for CFG rendering, clang-19/llvm-19 and libbpf headers for the BPF fixtures,
# bpftool for vmlinux.h, chromium for the browser test. Idempotent and quick
# when everything is present; does nothing (but says so) when not root.
set -euo pipefail

need=()
command -v dot >/dev/null 2>&1 || need+=(graphviz)
command -v clang-19 >/dev/null 2>&1 || need+=(clang-19)
command -v llvm-objdump-19 >/dev/null 2>&1 || need+=(llvm-19)
[ -e /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
command -v bpftool >/dev/null 2>&1 || need+=(bpftool)
# compiled BPF objects nobody here wrote, for the loader's foreign-object test
[ -n "$(ls /usr/lib/*/bpf/xdp-dispatcher.o 2>/dev/null)" ] || need+=(xdp-tools)
# headless Chromium for the browser test of the notebooks (driven by Playwright)
command -v chromium >/dev/null 2>&1 || need+=(chromium)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "system-deps: missing Debian packages: ${need[*]} (not root: install them yourself)" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: missing ${need[*]} and no apt-get here; see environment.yml" >&2
  exit 0
fi
echo "system-deps: installing ${need[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
