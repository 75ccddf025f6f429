#include "writer/egress.hpp"

#include <cstring>

#include "core/virtio_net.hpp"
#include "core/worker.hpp"
#include "offload/checksum.hpp"
#include "offload/gso.hpp"

namespace fdlinkd {

namespace {

VirtioNetHdr header_of(const Frame& f) {
  VirtioNetHdr h;
  if (f.vnet) std::memcpy(&h, f.data - sizeof h, sizeof h);
  return h;
}

bool is_gso(const VirtioNetHdr& h) {
  return h.gso_type != VirtioNetHdr::kGsoNone;
}

// A checksum field at offset 8 is SCTP's CRC32c (Linux offloads it as NEEDS_CSUM too). No fd
// can take it back in a virtio header (it would be finished as a 16-bit sum): always done here.
bool is_sctp_crc(const VirtioNetHdr& h) {
  return (h.flags & VirtioNetHdr::kNeedsCsum) && h.csum_offset == 8;
}

// TCP GSO in a UDP tunnel (VXLAN, Geneve): the kernel's virtio header cannot say "tunnel",
// so it reads TCP while the frame's own (`outer`) headers are UDP. No fd can take such a
// header back: fdlinkd segments these frames itself, for every egress.
bool is_tunnel_gso(const VirtioNetHdr& h, const offload::PacketInfo& outer) {
  return (h.gso_kind() == VirtioNetHdr::kGsoTcpV4 || h.gso_kind() == VirtioNetHdr::kGsoTcpV6) &&
         outer.l4_proto == offload::kProtoUdp;
}

// A GSO frame the egress can segment as it is: not a tunnel's, and its segments (the sender's
// gso_size) fit the egress MTU (else the kernel would drop them; fdlinkd cuts them smaller).
bool gso_fits(const Frame& f, const VirtioNetHdr& h, const EgressCaps& caps) {
  offload::PacketInfo info;
  return offload::parse_headers(f.data, f.len, caps.l2, info) && !is_tunnel_gso(h, info) &&
         std::size_t{info.headers} + h.gso_size <= caps.wire_capacity;
}

// Whether the egress takes GSO frames of this kind.
bool gso_taken(const VirtioNetHdr& h, const EgressCaps& caps) {
  if ((h.gso_type & VirtioNetHdr::kGsoEcn) && !caps.gso_ecn) return false;
  switch (h.gso_kind()) {
    case VirtioNetHdr::kGsoTcpV4: return caps.gso_tcp4;
    case VirtioNetHdr::kGsoTcpV6: return caps.gso_tcp6;
    default: return caps.gso_udp;
  }
}

// Passed through as it is (header included) to an egress that takes offloads: a GSO frame
// of a kind the egress takes and can segment, and anything within the MTU.
bool passes_through(const Frame& f, const VirtioNetHdr& h, const EgressCaps& caps) {
  if (!f.vnet || !caps.passthrough || is_sctp_crc(h)) return false;
  return is_gso(h) ? gso_taken(h, caps) && gso_fits(f, h, caps) : f.len <= caps.wire_capacity;
}

// What a frame that is not passed through needs done before the wire takes it.
bool work_left(const Frame& f, const VirtioNetHdr& h, const EgressCaps& caps) {
  return f.len > caps.wire_capacity || (h.flags & VirtioNetHdr::kNeedsCsum) || is_gso(h);
}

bool needs_work(const Frame& f, const EgressCaps& caps) {
  const VirtioNetHdr h = header_of(f);  // all zero when the frame has none
  if (passes_through(f, h, caps))       // a GSO frame must carry a partial checksum
    return is_gso(h) && !(h.flags & VirtioNetHdr::kNeedsCsum);
  return work_left(f, h, caps);
}

// Sets the header the egress fd gets for frame i (Batch::tx_header): the frame's own when
// passed through, else a zero one with hdr_len = the frame length. The frame is not touched:
// another output may still need its own header.
void stamp_headers(Batch& b, const EgressCaps& caps) {
  if (!caps.vnet_fd) return;
  for (std::size_t i = 0; i < b.size(); ++i) {
    const Frame& f = b[i];
    VirtioNetHdr& h = b.tx_header(i);
    if (f.vnet && caps.passthrough) {
      std::memcpy(&h, f.data - sizeof h, sizeof h);
      continue;
    }
    h = VirtioNetHdr{};
    h.hdr_len = static_cast<std::uint16_t>(f.len > 0xFFFF ? 0xFFFF : f.len);
  }
}

// A GRO super-frame (DATA_VALID, not NEEDS_CSUM) passed on as GSO: the kernel can only
// segment it with a partial checksum, as every virtio sender gives one.
bool make_partial(const Frame& f, VirtioNetHdr h, bool l2) {
  offload::PacketInfo info;
  if (!offload::parse_headers(f.data, f.len, l2, info) || info.ip_version == 0) return false;
  offload::seed_partial(f.data, info, f.len - info.l4);
  h.flags =
      static_cast<std::uint8_t>((h.flags & ~VirtioNetHdr::kDataValid) | VirtioNetHdr::kNeedsCsum);
  h.csum_start = info.l4;
  h.csum_offset = info.l4_proto == offload::kProtoTcp ? 16 : 6;
  std::memcpy(f.data - sizeof h, &h, sizeof h);
  return true;
}

}  // namespace

void prepare_egress(Batch& batch, const EgressCaps& caps, Worker& w, CounterValues& tally,
                    const std::function<void(Batch&)>& send) {
  bool work = false;
  for (std::size_t i = 0; i < batch.size() && !work; ++i)
    work = needs_work(batch[i], caps);
  if (!work) {
    stamp_headers(batch, caps);
    send(batch);
    return;
  }
  Batch* out = &w.spill;

  out->clear();
  auto flush = [&] {
    stamp_headers(*out, caps);
    send(*out);
    out->clear();
  };
  for (std::size_t i = 0; i < batch.size(); ++i) {
    Frame& f = batch[i];  // (a copy made to change it stays with this batch's descriptor)
    const VirtioNetHdr h = header_of(f);
    const bool gso = is_gso(h);
    if (passes_through(f, h, caps)) {
      if (gso && !(h.flags & VirtioNetHdr::kNeedsCsum)) {
        if (!make_writable(f, w.copies)) {
          ++tally.drop(DropReason::no_buffer);
          continue;
        }
        if (!make_partial(f, h, caps.l2)) {
          ++tally.drop(DropReason::vnet_bad_headers);
          continue;
        }
      }
      if (out->full()) flush();
      out->push(f.data, f.len, true);
      continue;
    }
    if (!work_left(f, h, caps)) {
      if (out->full()) flush();
      out->push(f.data, f.len, false);
      continue;
    }
    offload::PacketInfo info;
    if (!gso && f.len <= caps.wire_capacity) {  // only the checksum is left to do
      if (!make_writable(f, w.copies)) {
        ++tally.drop(DropReason::no_buffer);
        continue;
      }
      const bool sctp = is_sctp_crc(h) && offload::parse_headers(f.data, f.len, caps.l2, info) &&
                        info.l4_proto == offload::kProtoSctp && info.l4 == h.csum_start;
      if (sctp ? !offload::finish_sctp(f.data, offload::ip_packet_end(f.data, f.len, info),
                                       h.csum_start)
               : !offload::finish_partial(f.data, f.len, h.csum_start, h.csum_offset)) {
        ++tally.drop(DropReason::vnet_bad_csum);
        continue;
      }
      if (out->full()) flush();
      out->push(f.data, f.len, false);
      continue;
    }
    // Too big for the wire, or tunnel GSO: TCP is cut into segments that keep the sender's MSS
    // (in a UDP tunnel, along the inner TCP header), a UDP GSO frame into datagrams of exactly
    // its gso_size (a plain UDP datagram cannot be cut). Segments fit both the wire and the
    // spill batch's slots.
    const std::size_t room =
        caps.wire_capacity < out->slot_capacity() ? caps.wire_capacity : out->slot_capacity();
    if (!offload::parse_headers(f.data, f.len, caps.l2, info) || info.headers >= room) {
      ++tally.drop(DropReason::too_big);
      continue;
    }
    std::size_t mss = room - info.headers;
    offload::PacketInfo inner;
    if (gso && is_tunnel_gso(h, info)) {  // (check_vnet found the inner TCP header)
      if (!offload::parse_udp_tunnel(f.data, f.len, info, h.csum_start, inner) ||
          inner.headers >= room) {
        ++tally.drop(DropReason::too_big);
        continue;
      }
      mss = room - inner.headers;
      if (h.gso_size < mss) mss = h.gso_size;
    } else if (info.l4_proto == offload::kProtoTcp) {
      if (gso && h.gso_size < mss) mss = h.gso_size;
    } else if (info.l4_proto == offload::kProtoUdp && h.gso_kind() == VirtioNetHdr::kGsoUdpL4 &&
               h.gso_size <= mss) {
      mss = h.gso_size;
    } else {
      ++tally.drop(DropReason::too_big);
      continue;
    }
    auto cut = [&] {
      return inner.ip_version != 0 ? offload::segment_tunnel(f.data, f.len, info, inner, mss, *out)
                                   : offload::segment(f.data, f.len, info, mss, *out);
    };
    std::size_t before = out->size();
    if (!cut()) {
      flush();
      before = 0;
      if (!cut()) {
        ++tally.drop(DropReason::too_big);
        continue;
      }
    }
    tally.gso_segments += out->size() - before - 1;
  }
  if (!out->empty()) flush();
}

}  // namespace fdlinkd
