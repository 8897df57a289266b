# sdist-box in a container: the binary built with cargo, then a slim Debian
# runtime with what builds need (python3, venv, pip, a C toolchain and the
# Python headers for C extensions).
#
# The sandbox needs user namespaces and a fresh /proc inside the container:
#   docker run --rm \
#     --security-opt seccomp=unconfined \
#     --security-opt apparmor=unconfined \
#     --security-opt systempaths=unconfined \
#     -v "$PWD/sdists:/in:ro" -v "$PWD/dist:/out" \
#     sdist-box build-all /in -o /out
# See docs/container.md for why each flag, a narrower seccomp profile, and
# what happens without them (exit code 4; `sdist-box doctor` explains).

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY shim ./shim
COPY profiles ./profiles
RUN cargo build --release --locked --bin sdist-box

FROM debian:bookworm-slim
# Debian's own versions, kept current by the base image's security updates;
# pinning each one would only make the image fail to build when they move.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      python3 python3-venv python3-pip python3-dev \
      gcc g++ libc6-dev make \
      ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 --shell /usr/sbin/nologin sdistbox
COPY --from=build /src/target/release/sdist-box /usr/local/bin/sdist-box
# An unprivileged user: the sandbox maps it to root in its own user namespace
# only; nothing in the container needs root at run time.
USER 10001
ENV SDIST_BOX_CACHE=/home/sdistbox/.cache/sdist-box
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/sdist-box"]
CMD ["doctor"]
