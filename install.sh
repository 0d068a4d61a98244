#!/usr/bin/env bash
# Installs everything herd needs into .venv: Debian build packages, the Python packages pinned
# with their sha256 hashes in requirements.lock, herd itself (editable), and KenLM's lmplz and
# build_binary built from the locked kenlm source package.
# Idempotent: on a ready machine it only checks stamps and returns in seconds.
#
#   ./install.sh                  install; refuses a lock that does not match pyproject.toml
#   ./install.sh --check-lock     only that check: exit 0 when the lock matches, else 2
#   ./install.sh --lock [ARGS]    regenerate requirements.lock (and requirements-bench.lock, within
#                                 its pins) from pyproject.toml, then install; ARGS go to
#                                 pip-compile (--upgrade: newest allowed releases,
#                                 --upgrade-package NAME: one of them). Without --upgrade the
#                                 pins already in the lock are kept where pyproject.toml allows.
#   ./install.sh --bench          install, then the benchmarks' peers (the extra `bench`: datatrove
#                                 and what it imports) from requirements-bench.lock
set -euo pipefail
cd "$(dirname "$0")"

lock=requirements.lock
locked_extras=(test source-builds)  # the optional-dependency groups the lock covers
# The benchmarks' peers are locked apart, within the main lock's pins (the same version of every
# package both name), so that herd's own install and tests never carry datatrove and spaCy.
bench_lock=requirements-bench.lock
bench_extras=("${locked_extras[@]}" bench)
digest_label="# pyproject.toml dependency digest:"

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  { echo "install: herd needs Python 3.11 or newer; python3 is $(python3 --version 2>&1)" >&2; exit 2; }

# The digest of what a lock is made from: requires-python, the dependencies, the extras named
# (those the lock covers) and the build requirements. Other edits of pyproject.toml (markers,
# tool settings) keep the lock.
dependency_digest() {
  python3 - "$@" <<'PY'
import hashlib, json, sys, tomllib
with open("pyproject.toml", "rb") as f:
    toml = tomllib.load(f)
project = toml["project"]
extras = project.get("optional-dependencies", {})
picked = {
    "requires-python": project.get("requires-python"),
    "dependencies": project.get("dependencies", []),
    "extras": {name: extras.get(name, []) for name in sys.argv[1:]},
    "build-system": toml.get("build-system", {}).get("requires", []),
}
print(hashlib.sha256(json.dumps(picked, sort_keys=True).encode()).hexdigest())
PY
}

# The lock's entries (pin and hashes) for the packages named.
locked() {
  awk -v names=" $* " '
    /^[A-Za-z0-9]/ { split($1, pin, "=="); keep = index(names, " " tolower(pin[1]) " ") > 0 }
    keep && !/^[[:space:]]*#/ { print }' "$lock"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Write lock file $1 with pip-compile for the extras named up to "--", passing it the arguments
# after; its first line is then the digest of what it was made from.
compile_lock() {
  local output=$1 extras=() args=()
  shift
  while [ "$1" != "--" ]; do extras+=("$1"); args+=(--extra "$1"); shift; done
  shift
  "$work/lock-tools/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --strip-extras \
    "${args[@]}" --all-build-deps --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
    --output-file "$output" "$@" pyproject.toml
  { echo "$digest_label $(dependency_digest "${extras[@]}")"; cat "$output"; } >"$work/lock"
  mv "$work/lock" "$output"
}

if [ "${1:-}" = "--lock" ]; then
  shift
  echo "install: regenerating $lock with pip-compile"
  python3 -m venv "$work/lock-tools"
  "$work/lock-tools/bin/python" -m pip --disable-pip-version-check -q install pip-tools==7.7.0
  compile_lock "$lock" "${locked_extras[@]}" -- "$@"
  echo "install: regenerating $bench_lock within the pins of $lock"
  compile_lock "$bench_lock" "${bench_extras[@]}" -- --constraint "$lock" "$@"
  rm -rf herd.egg-info  # pip-compile's metadata build leaves it; see below
fi

# What is wrong with lock file $1 for the extras named after it, in one line; nothing when it
# matches pyproject.toml.
lock_problem() {
  local file=$1
  shift
  if [ ! -f "$file" ]; then
    echo "install: $file is missing: regenerate it with ./install.sh --lock"
  elif [ "$(sed -n "s/^$digest_label //p" "$file")" != "$(dependency_digest "$@")" ]; then
    echo "install: $file does not match the dependencies in pyproject.toml: regenerate it with ./install.sh --lock"
  fi
}
problem=$(lock_problem "$lock" "${locked_extras[@]}")
if [ -z "$problem" ] && { [ "${1:-}" = "--check-lock" ] || [ "${1:-}" = "--bench" ]; }; then
  problem=$(lock_problem "$bench_lock" "${bench_extras[@]}")  # --bench: refused before installing anything
fi
[ -z "$problem" ] || { echo "$problem" >&2; exit 2; }
if [ "${1:-}" = "--check-lock" ]; then exit 0; fi

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
# A headless browser for the test that renders `pipeline report`'s page (tests/pipeline/commands/
# test_report.py). Optional: herd never runs it, and where the distribution has no such package
# (Ubuntu ships chromium as a snap) the test skips with its reason.
if ! command -v chromium >/dev/null 2>&1; then
  echo "install: apt package chromium (optional: the report test's headless browser)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } 2>/dev/null ||
    echo "install: chromium is not available here; tests/pipeline/commands/test_report.py will skip its browser test"
fi

pip=(.venv/bin/python -m pip --disable-pip-version-check -q)

# A new lock gets a new environment, so .venv holds exactly what the lock names and nothing left
# from an earlier one. KenLM's binaries do not depend on Python and are kept.
lock_stamp=.venv/.herd-lock.sha256
lock_digest=$(sha256sum "$lock" | cut -d' ' -f1)
if [ "$(cat "$lock_stamp" 2>/dev/null)" != "$lock_digest" ]; then
  echo "install: python packages from $lock"
  mkdir "$work/kept-tools"
  for tool in lmplz build_binary; do
    if [ -x ".venv/bin/$tool" ]; then mv ".venv/bin/$tool" "$work/kept-tools/"; fi
  done
  rm -rf .venv
  python3 -m venv .venv
  if [ -n "$(ls "$work/kept-tools")" ]; then mv "$work/kept-tools"/* .venv/bin/; fi
  # kenlm and fasttext are built from source: their build tools (setuptools and the extra
  # source-builds) are installed first, from the lock, and the builds use them (no build
  # environment filled with whatever the index serves that day).
  build_tools=$(python3 -c 'import re, tomllib; deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["source-builds"]; print(" ".join(re.match(r"[A-Za-z0-9._-]+", d).group(0).lower() for d in deps))')
  locked setuptools $build_tools >"$work/build-tools.txt"
  "${pip[@]}" install --require-hashes --no-deps -r "$work/build-tools.txt"
  # torch in the lock is the 2.13.0 CPU build (2.13.0+cpu); the CUDA build would be gigabytes.
  "${pip[@]}" install --require-hashes --no-build-isolation -r "$lock"
  echo "$lock_digest" >"$lock_stamp"
  rm -f .venv/.herd-pyproject.sha256
fi

# herd itself, again whenever pyproject.toml changes (its scripts and metadata come from there).
herd_stamp=.venv/.herd-pyproject.sha256
herd_digest=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$herd_stamp" 2>/dev/null)" != "$herd_digest" ] || [ -d herd.egg-info ]; then
  # A herd.egg-info in the repository root (left by a metadata build) would shadow the installed
  # metadata whenever Python runs from here, and with it the entry points that register sources.
  rm -rf herd.egg-info
  "${pip[@]}" install --no-deps --no-build-isolation -e .
  echo "$herd_digest" >"$herd_stamp"
fi

if [ ! -x .venv/bin/lmplz ] || [ ! -x .venv/bin/build_binary ]; then
  echo "install: building KenLM lmplz and build_binary"
  locked kenlm >"$work/kenlm.txt"
  "${pip[@]}" download --no-binary kenlm --no-deps --require-hashes -r "$work/kenlm.txt" -d "$work"
  sdist=$(ls "$work"/kenlm-*.tar.gz)
  tar -xzf "$sdist" -C "$work"
  src="$work/$(basename "$sdist" .tar.gz)"
  # Compiler warnings from KenLM's sources are noise here; the log is shown only on failure.
  if ! { cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release &&
         cmake --build "$work/build" --target lmplz build_binary -j "$(nproc)"; } >"$work/build.log" 2>&1; then
    tail -50 "$work/build.log"; echo "install: building KenLM failed" >&2; exit 1
  fi
  cp "$work/build/bin/lmplz" "$work/build/bin/build_binary" .venv/bin/
fi

if [ "${1:-}" = "--bench" ]; then
  # Stamped apart from the main lock: a new main lock makes a new .venv, which drops this stamp too.
  bench_stamp=.venv/.herd-bench-lock.sha256
  bench_digest=$(sha256sum "$bench_lock" | cut -d' ' -f1)
  if [ "$(cat "$bench_stamp" 2>/dev/null)" != "$bench_digest" ]; then
    echo "install: the benchmarks' peers from $bench_lock"
    "${pip[@]}" install --require-hashes --no-build-isolation -r "$bench_lock"
    echo "$bench_digest" >"$bench_stamp"
  fi
fi
echo "install: ready (.venv)"
