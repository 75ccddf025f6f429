// The XDP fast path (offload = "xdp" on a forward or bridge sink; link/fastpath.hpp).
//
// For each link whose sink offloads, the link takes part when:
//   - the fast path loaded at all (CAP_BPF and CAP_NET_ADMIN, a kernel with multi-buffer XDP);
//   - it is an af_packet link on an interface, and up (an af_xdp link's interface carries its
//     own program; TAP, unix, vxlan and vhost-user links are not interfaces XDP can see);
//   - the sink can decide its frames without userspace (forward: `to` is a link; bridge: it is
//     a port), and, for a forward, `to` is such a link too, in the same network namespace;
//   - fdlinkd's program could be attached to its interface (no one else's is there).
// Anything else keeps its path in userspace, and the reason is logged (once per change) and
// shown by `fdlinkctl status`. A bridge port that cannot take part is simply not a way out
// of the fast path: frames to it go up to fdlinkd as before.
#include <boost/json.hpp>

#include "core/log.hpp"
#include "runtime/runtime.hpp"

namespace fdlinkd {

namespace json = boost::json;

namespace {

// Why `link` cannot send or receive in the fast path ("" : it can).
std::string endpoint_why_not(const Link& link) {
  if (link.config().type_name() != "af_packet")
    return link.config().type_name() == "af_xdp"
               ? "an af_xdp link's interface carries its own XDP program (use an af_packet link)"
               : "only af_packet links are on an interface XDP can attach to (this is " +
                     std::string(link.config().type_name()) + ")";
  if (link.is_down() || link.ifindex() == 0) return "the link is down";
  return "";
}

}  // namespace

XdpFastPath* Runtime::prepare_fastpath(const Config& config) {
  bool wanted = false;
  for (const auto& s : config.sinks)
    wanted = wanted || (s.options && s.options->offload_xdp);
  if (!wanted && !fastpath_) return nullptr;
  if (!fastpath_) fastpath_ = std::make_unique<XdpFastPath>();
  const std::string& why = fastpath_->open();
  if (!why.empty() && wanted)
    log::warn("xdp_offload_unavailable",
              "offload = \"xdp\" is not possible here: every path stays in userspace",
              {{"why", why}});
  if (why.empty() && wanted && !fastpath_->trace_error().empty() && !trace_warned_) {
    trace_warned_ = true;
    log::warn("xdp_tx_failed_uncounted",
              "frames the kernel drops after the XDP fast path redirected them are not counted "
              "(xdp_tx_failed stays 0)",
              {{"why", fastpath_->trace_error()}});
  }
  return fastpath_.get();
}

void Runtime::plan_offload() {
  if (!fastpath_) return;
  bool wanted = false;
  for (std::size_t n = 0; n < graph_->size(); ++n)
    wanted = wanted || graph_->sink(n).offloads();
  std::vector<Offloaded> now;
  std::map<std::size_t, OffloadPlan> rows;  // slot -> its row, for the slots that take part
  std::map<std::size_t, const Link*> egress;
  std::vector<const Link*> at(links_.slots(), nullptr);  // slot -> its link
  for (const Link* l : links_.all())
    at[l->index()] = l;
  for (Link* l : links_.all()) {
    const std::size_t n = graph_->find(l->config().sink);
    if (n == Graph::npos || !wanted) continue;
    Offloaded o{l->name(), graph_->name(n), "", "", false};
    if (!graph_->sink(n).offloads()) {  // (said in status, so that it shows every path)
      o.quiet = true;
      const std::string type = graph_->type(n) ? std::string(graph_->type(n)->name) : "?";
      o.why_not = type == "forward" || type == "bridge"
                      ? "its sink has offload = \"off\""
                      : "its sink is a " + type + ", which needs fdlinkd";
      now.push_back(std::move(o));
      continue;
    }
    std::string why = fastpath_->open();
    if (why.empty()) why = endpoint_why_not(*l);
    OffloadPlan plan;
    if (why.empty()) {
      plan = graph_->sink(n).offload_plan(l->index());
      why = plan.why_not;
    }
    for (std::size_t e : plan.egress) {
      const Link* out = e < at.size() ? at[e] : nullptr;
      std::string no = out ? endpoint_why_not(*out) : "gone";
      if (no.empty() && out->config().netns != l->config().netns)
        no = "it is in another network namespace";
      if (no.empty()) {
        no = fastpath_->set_tx(e, out->ifindex(), out->config().netns);
        if (no.empty()) egress[e] = out;
      }
      if (!no.empty() && plan.port.mode == FDLINKD_FP_FORWARD && why.empty())
        why = "its way out, link \"" + (out ? out->name() : std::string("?")) + "\": " + no;
    }
    if (why.empty()) why = fastpath_->attach(l->index(), *l);
    if (why.empty()) {
      o.mode = fastpath_->mode(l->index());
      rows[l->index()] = plan;
    }
    o.why_not = why;
    now.push_back(std::move(o));
  }

  // Counters: a slot's are reset when it is first used for another link (told apart by
  // serial: a new Link may be made where a freed one was).
  const auto own = [&](std::size_t slot, const Link* l) {
    auto [it, fresh] = fastpath_owner_.try_emplace(slot, l->serial());
    if (!fresh && it->second == l->serial()) return;
    it->second = l->serial();
    fastpath_->reset_stats(slot);
  };
  // The rows: every way out gets its size limit; the slots that take part get their mode.
  for (const auto& [slot, out] : egress) {
    own(slot, out);
    if (rows.count(slot)) continue;
    fdlinkd_fp_port row{};
    row.max_len = static_cast<std::uint32_t>(out->config().wire_capacity());
    fastpath_->set_port(slot, row);
  }
  for (auto& [slot, plan] : rows) {
    const Link* l = at[slot];
    own(slot, l);
    plan.port.max_len = static_cast<std::uint32_t>(l->config().wire_capacity());
    if (plan.port.flags & FDLINKD_FP_TRUNK) fastpath_->set_vlans(slot, plan.trunk_vlans);
    // A veth or TUN peer leaves checksums unfinished; a frame from elsewhere whose checksum
    // happens to look unfinished is left as it was (fastpath.bpf.c), so every port checks.
    plan.port.flags |= FDLINKD_FP_PARTIALS;
    fastpath_->set_port(slot, plan.port);
  }
  // Slots that no longer take part: off, then detached (their frames go up to fdlinkd).
  for (std::size_t slot = 0; slot < fastpath_->slots_used(); ++slot)
    if (!rows.count(slot)) {
      if (fastpath_->attached(slot)) fastpath_->detach(slot);
      if (!egress.count(slot)) fastpath_->clear_tx(slot);
    }

  // What changed, in the log.
  for (const auto& o : now) {
    const auto before = std::find_if(offloaded_.begin(), offloaded_.end(), [&](const Offloaded& b) {
      return b.link == o.link && b.sink == o.sink;
    });
    if (o.quiet || (before != offloaded_.end() && before->why_not == o.why_not)) continue;
    if (o.why_not.empty())
      log::info("xdp_offload",
                "frames of the link are forwarded in the kernel (XDP) where they can be",
                {{"link", o.link}, {"sink", o.sink}, {"xdp_mode", o.mode}});
    else
      log::warn("xdp_offload_refused", "frames of the link stay in userspace",
                {{"link", o.link}, {"sink", o.sink}, {"why", o.why_not}});
  }
  offloaded_ = std::move(now);
}

void Runtime::replan_offload() {
  if (fastpath_ && fastpath_->ready() && !reloading_) plan_offload();
}

void Runtime::log_tx_failed() {
  if (!fastpath_ || !fastpath_->ready()) return;
  // Frames the kernel dropped after a redirect, in the log as they grow (once a second at most).
  for (const Link* l : links_.all()) {
    const auto owner = fastpath_owner_.find(l->index());
    if (owner == fastpath_owner_.end() || owner->second != l->serial()) continue;
    const std::uint64_t failed = fastpath_->stats(l->index()).tx_failed;
    auto& [of, logged] = tx_failed_logged_[l->index()];
    if (of != l->serial()) of = l->serial(), logged = 0;  // (the slot was another link's)
    if (failed == logged) continue;
    log::warn("xdp_tx_failed",
              "the kernel dropped frames the XDP fast path had redirected to the link (its way "
              "out stopped taking redirected frames, was full or down)",
              {{"link", l->name()}, {"frames", failed - logged}, {"total", failed}});
    logged = failed;
  }
}

void Runtime::schedule_offload_check() {
  offload_timer_.expires_after(std::chrono::seconds(1));
  offload_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    replan_offload();
    log_tx_failed();
    schedule_offload_check();
  });
}

void Runtime::add_fastpath_stats(const Link& link, json::object& o) const {
  if (!fastpath_ || !fastpath_->ready()) return;
  const auto it = fastpath_owner_.find(link.index());
  fdlinkd_fp_stats s{};
  if (it != fastpath_owner_.end() && it->second == link.serial())
    s = fastpath_->stats(link.index());
  o["xdp_rx_packets"] = s.rx_packets;
  o["xdp_rx_bytes"] = s.rx_bytes;
  o["xdp_tx_packets"] = s.tx_packets;
  o["xdp_tx_bytes"] = s.tx_bytes;
  o["xdp_to_slow_path"] = s.to_slow_path;
  o["xdp_dropped"] = s.dropped;
  o["xdp_tx_failed"] = s.tx_failed;
}

json::array Runtime::offload_status() const {
  json::array a;
  for (const auto& o : offloaded_) {
    json::object e{{"link", o.link}, {"sink", o.sink}, {"offloaded", o.why_not.empty()}};
    if (o.why_not.empty())
      e["xdp_mode"] = o.mode;
    else
      e["why_not"] = o.why_not;
    a.push_back(std::move(e));
  }
  return a;
}

}  // namespace fdlinkd
