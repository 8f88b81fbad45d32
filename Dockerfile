# SPDX-License-Identifier: Apache-2.0
# The vakt image: vaktd (the node agent, the entrypoint) and vakt (the CLI, for
# `kubectl exec ... -- vakt status|flows`), on a distroless-style root: the
# two binaries, the shared libraries they link (exactly `ldd` of each) and the
# dynamic loader. No shell, no package manager, no other files.
#
#   docker build --build-arg VERSION=$(git describe --always --dirty) -t vakt:0.1.0 .
#
# Why FROM scratch and not gcr.io/distroless/base-debian12: distroless/base
# brings glibc, OpenSSL, CA certificates and tzdata but not libbpf, libelf,
# libmnl, jansson or libyaml, so those would be copied in anyway, and two
# sources of glibc (the builder's and the base's) could drift apart. From
# scratch, everything in the image comes from one Debian release (the build
# stage), the list below is the whole image, and tests/manifests/
# test_manifests.sh checks it against `ldd build/vaktd build/vakt` and runs
# both binaries in a chroot of exactly these files. Security fixes of the
# libraries arrive by rebuilding (pin debian:bookworm by digest in CI and
# rebuild on its updates). amd64 only: the library paths are x86_64-linux-gnu.

# --- build -------------------------------------------------------------------
FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential clang llvm bpftool pkg-config linux-libc-dev \
      libbpf-dev libelf-dev zlib1g-dev libmnl-dev libjansson-dev \
      libcurl4-openssl-dev libyaml-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
ARG VERSION=unknown
RUN make -j"$(nproc)" VERSION="$VERSION" build/vaktd build/vakt \
 && build/vaktd --version && build/vakt version

# --- image -------------------------------------------------------------------
FROM scratch
# The dynamic loader at the path in the binaries' PT_INTERP, then `ldd` of
# vaktd and vakt (symlinks resolved: each file lands under its soname).
COPY --from=build /lib64/ld-linux-x86-64.so.2 /lib64/
COPY --from=build \
     /lib/x86_64-linux-gnu/libbpf.so.1 \
     /lib/x86_64-linux-gnu/libc.so.6 \
     /lib/x86_64-linux-gnu/libelf.so.1 \
     /lib/x86_64-linux-gnu/libjansson.so.4 \
     /lib/x86_64-linux-gnu/libmnl.so.0 \
     /lib/x86_64-linux-gnu/libyaml-0.so.2 \
     /lib/x86_64-linux-gnu/libz.so.1 \
     /lib/x86_64-linux-gnu/
COPY --from=build /src/build/vaktd /src/build/vakt /usr/bin/
# Runs as uid 0 with every capability dropped but BPF, NET_ADMIN and PERFMON
# (manifests/20-daemonset.yaml); docs/install.md explains why not non-root.
USER 0:0
ENTRYPOINT ["/usr/bin/vaktd"]
