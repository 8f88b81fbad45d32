# SPDX-License-Identifier: Apache-2.0
# vakt - Kubernetes NetworkPolicy enforcement with eBPF.
#
#   make            build vaktd, vakt and the BPF objects into build/
#   make test       every test: unit, BPF_PROG_TEST_RUN, end-to-end (root)
#   make check      clang-tidy and cppcheck
#   make bench      benchmarks
#   make demo       the network-namespace demo cluster
#   make deps       install the Debian packages (root)
#   V=1             show the commands
#
# Components add sources by dropping files in place; see mk/rules.mk for
# the rules and docs/development.md for the layout.

include mk/rules.mk
