#!/usr/bin/env bash
# Install llama-cpp-python VERSION from a wheel cached in DIR, building it once if missing.
# GGML_NATIVE=OFF makes the build portable: a wheel built on one CPU runs on another.
set -euo pipefail
version="$1"
cache="$2"
pip=${PIP:-python -m pip}
mkdir -p "$cache"
shopt -s nullglob
wheels=("$cache"/llama_cpp_python-"$version"-*.whl)
if [ ${#wheels[@]} -eq 0 ]; then
  echo "Building llama-cpp-python $version once (about 5 minutes on 2 cores); cached in $cache"
  CMAKE_ARGS="-DGGML_NATIVE=OFF" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    $pip wheel --quiet --no-deps --no-binary llama-cpp-python -w "$cache" "llama-cpp-python==$version"
  wheels=("$cache"/llama_cpp_python-"$version"-*.whl)
fi
$pip install --quiet --no-deps "${wheels[0]}"
