#!/usr/bin/env bash
# Installs everything herd needs into .venv: Debian build packages, the Python package with
# its test extras, and KenLM's lmplz/build_binary built from the kenlm source package.
# Idempotent: on a ready machine it only checks stamps and returns in seconds.
set -euo pipefail
cd "$(dirname "$0")"

apt_packages=(cmake build-essential libboost-program-options-dev libboost-system-dev
  libboost-thread-dev libboost-test-dev libeigen3-dev zlib1g-dev libbz2-dev liblzma-dev)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install: apt packages ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)

# Reinstall the package only when its declared dependencies change.
stamp=.venv/.herd-pyproject.sha256
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "install: python packages"
  # (kenlm's own sdist is the only source build; its build tools come as wheels.)
  # torch first and pinned: this build is the CPU wheel; an unpinned torch pulls a CUDA build.
  "${pip[@]}" install torch==2.13.0
  "${pip[@]}" install -e '.[test]'
  echo "$want" >"$stamp"
fi

if [ ! -x .venv/bin/lmplz ] || [ ! -x .venv/bin/build_binary ]; then
  echo "install: building KenLM lmplz and build_binary"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  "${pip[@]}" download --no-binary kenlm --no-deps kenlm -d "$work"
  tar -xzf "$work"/kenlm-*.tar.gz -C "$work"
  src=$(find "$work" -maxdepth 1 -type d -name 'kenlm-*' | head -1)
  # Compiler warnings from KenLM's sources are noise here; the log is shown only on failure.
  if ! { cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release &&
         cmake --build "$work/build" --target lmplz build_binary -j "$(nproc)"; } >"$work/build.log" 2>&1; then
    tail -50 "$work/build.log"; echo "install: building KenLM failed" >&2; exit 1
  fi
  cp "$work/build/bin/lmplz" "$work/build/bin/build_binary" .venv/bin/
fi
echo "install: ready (.venv)"
