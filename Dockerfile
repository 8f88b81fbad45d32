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
# libcurl brings its TLS, HTTP/2 and Kerberos dependencies. The Kubernetes
# API is reached by IP in-cluster (KUBERNETES_SERVICE_HOST) and the cluster
# CA comes from the service account, so the image needs neither NSS modules
# nor a CA bundle; a kubeconfig naming the server by hostname does.
COPY --from=build /lib64/ld-linux-x86-64.so.2 /lib64/
COPY --from=build \
     /lib/x86_64-linux-gnu/libbpf.so.1 \
     /lib/x86_64-linux-gnu/libbrotlicommon.so.1 \
     /lib/x86_64-linux-gnu/libbrotlidec.so.1 \
     /lib/x86_64-linux-gnu/libc.so.6 \
     /lib/x86_64-linux-gnu/libcom_err.so.2 \
     /lib/x86_64-linux-gnu/libcrypto.so.3 \
     /lib/x86_64-linux-gnu/libcurl.so.4 \
     /lib/x86_64-linux-gnu/libelf.so.1 \
     /lib/x86_64-linux-gnu/libffi.so.8 \
     /lib/x86_64-linux-gnu/libgmp.so.10 \
     /lib/x86_64-linux-gnu/libgnutls.so.30 \
     /lib/x86_64-linux-gnu/libgssapi_krb5.so.2 \
     /lib/x86_64-linux-gnu/libhogweed.so.6 \
     /lib/x86_64-linux-gnu/libidn2.so.0 \
     /lib/x86_64-linux-gnu/libjansson.so.4 \
     /lib/x86_64-linux-gnu/libk5crypto.so.3 \
     /lib/x86_64-linux-gnu/libkeyutils.so.1 \
     /lib/x86_64-linux-gnu/libkrb5.so.3 \
     /lib/x86_64-linux-gnu/libkrb5support.so.0 \
     /lib/x86_64-linux-gnu/liblber-2.5.so.0 \
     /lib/x86_64-linux-gnu/libldap-2.5.so.0 \
     /lib/x86_64-linux-gnu/libmnl.so.0 \
     /lib/x86_64-linux-gnu/libnettle.so.8 \
     /lib/x86_64-linux-gnu/libnghttp2.so.14 \
     /lib/x86_64-linux-gnu/libp11-kit.so.0 \
     /lib/x86_64-linux-gnu/libpsl.so.5 \
     /lib/x86_64-linux-gnu/libresolv.so.2 \
     /lib/x86_64-linux-gnu/librtmp.so.1 \
     /lib/x86_64-linux-gnu/libsasl2.so.2 \
     /lib/x86_64-linux-gnu/libssh2.so.1 \
     /lib/x86_64-linux-gnu/libssl.so.3 \
     /lib/x86_64-linux-gnu/libtasn1.so.6 \
     /lib/x86_64-linux-gnu/libunistring.so.2 \
     /lib/x86_64-linux-gnu/libyaml-0.so.2 \
     /lib/x86_64-linux-gnu/libz.so.1 \
     /lib/x86_64-linux-gnu/libzstd.so.1 \
     /lib/x86_64-linux-gnu/
COPY --from=build /src/build/vaktd /src/build/vakt /usr/bin/
# Runs as uid 0 with every capability dropped but BPF, NET_ADMIN and PERFMON
# (manifests/20-daemonset.yaml); docs/install.md explains why not non-root.
USER 0:0
ENTRYPOINT ["/usr/bin/vaktd"]
