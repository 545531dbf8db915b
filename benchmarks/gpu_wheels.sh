#!/usr/bin/env bash
# Download the wheels the GPU machine lacks (benchmarks/gpu_wheels.txt) into .whl/, for Python 3.12
# manylinux x86_64, from the package index this machine reaches; the GPU machine has none.
#   bash benchmarks/gpu_wheels.sh          then: bash benchmarks/gpu_check.sh --dry-run
# .whl/ is git-ignored; the device tool carries it (run with carry: [".whl"]).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
mkdir -p .whl
# pip matches manylinux_2_N exactly: name the tags these wheels are published with.
platforms=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 \
           manylinux2014_x86_64 manylinux1_x86_64; do
    platforms+=(--platform "$tag")
done
grep -Ev '^\s*(#|$)' benchmarks/gpu_wheels.txt | while read -r spec; do
    "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        "${platforms[@]}" -d .whl "$spec"
done
du -sh .whl
