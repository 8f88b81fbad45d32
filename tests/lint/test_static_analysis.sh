#!/usr/bin/env bash
# clang-tidy and cppcheck over every agent and CLI source (make check): a
# finding fails the suite like a failing test, so analysers stay clean.
set -euo pipefail
cd "$(dirname "$0")/../.."
make --no-print-directory check
