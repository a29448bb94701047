# cgelu inference server image.
#
#   docker build -t cgelu .                                   # CPU backend only (default, small)
#   docker build -t cgelu-torch --build-arg CGELU_WITH_TORCH=ON .  # + --backend torch (LibTorch)
#   docker run --rm -p 8001:8001 -p 8002:8002 cgelu [cgelu-server flags...]
#
# Without a Docker engine: ../shared/tools/container-build --tag localhost/cgelu:dev
# (tests/container/run-image-test.sh builds the image and smoke-tests it that way).
#
# Build stage: the project's own dependency script, then a Release build of the two executables.
# Runtime stage: a plain debian:bookworm with only the shared-library packages those executables
# load (deploy/runtime-packages.sh derives the list from ldd), running as an unprivileged user.
# The CUDA kernel is not built: the image has no nvcc and targets CPU nodes.

ARG CGELU_WITH_TORCH=OFF

FROM debian:bookworm AS build
ARG CGELU_WITH_TORCH
# Parallel compile jobs; empty means one per CPU of the builder.
ARG CGELU_BUILD_JOBS=
ENV DEBIAN_FRONTEND=noninteractive
# Dependencies first, in their own layer, so source edits do not reinstall them.
COPY scripts/install-deps.sh /src/scripts/install-deps.sh
RUN CGELU_WITH_PROMETHEUS=0 CGELU_WITH_PYTHON_CLIENTS=0 /src/scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . /src
RUN cmake -S /src -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCGELU_BUILD_TESTS=OFF -DCGELU_BUILD_BENCHMARKS=OFF -DCGELU_ENABLE_CUDA=OFF \
      -DCGELU_WITH_TORCH=${CGELU_WITH_TORCH} \
 && cmake --build /build --parallel ${CGELU_BUILD_JOBS:-$(nproc)} \
      --target cgelu-server cgelu-client \
 && install -D -s -m 0755 -t /out/bin /build/server/cgelu-server /build/client/cgelu-client \
 && /src/deploy/runtime-packages.sh /out/bin/cgelu-server /out/bin/cgelu-client \
      > /out/runtime-packages.txt \
 && cat /out/runtime-packages.txt

FROM debian:bookworm
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=build /out/runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update -qq \
 && xargs apt-get install -y -qq --no-install-recommends < /tmp/runtime-packages.txt \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt \
 && groupadd --gid 10001 cgelu \
 && useradd --uid 10001 --gid cgelu --no-create-home --shell /usr/sbin/nologin cgelu
COPY --from=build /out/bin/ /usr/local/bin/
USER 10001:10001
# 8001: gRPC, Open Inference Protocol and grpc.health.v1; 8002: Prometheus /metrics.
EXPOSE 8001 8002
ENTRYPOINT ["cgelu-server"]
