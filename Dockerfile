# Build:  docker build -t fdlinkd .
# Run:    docker run --rm --network host --cap-add NET_ADMIN --cap-add NET_RAW \
#           --device /dev/net/tun -v /etc/fdlinkd.toml:/etc/fdlinkd.toml:ro fdlinkd
# (links with `netns` also need --cap-add SYS_ADMIN -v /run/netns:/run/netns; af_xdp links
# --cap-add BPF --cap-add IPC_LOCK)
FROM debian:12 AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/
RUN ./scripts/install-deps.sh
COPY . .
RUN cmake -S . -B build -DFDLINKD_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release \
 && cmake --build build -j"$(nproc)" \
 && DESTDIR=/out cmake --install build --prefix /usr

FROM debian:12-slim
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      libspdlog1.10 libfmt9 libtomlplusplus3 libsystemd0 libpcap0.8 libmnl0 libxdp1 libbpf1 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/usr/sbin/fdlinkd /out/usr/sbin/fdlinkctl /usr/sbin/
COPY --from=build /out/usr/lib/fdlinkd/plugins /usr/lib/fdlinkd/plugins
# The CNI plugin, which the Kubernetes DaemonSet's init container copies to /opt/cni/bin.
COPY --from=build /out/usr/lib/cni/fdlinkd-cni /usr/lib/cni/fdlinkd-cni
COPY --from=build /out/etc/fdlinkd.toml /etc/fdlinkd.toml
ENV RUNTIME_DIRECTORY=/run/fdlinkd
ENTRYPOINT ["/usr/sbin/fdlinkd"]
CMD ["-c", "/etc/fdlinkd.toml"]
