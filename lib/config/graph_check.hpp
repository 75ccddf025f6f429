// graph_check: what holds across tables: names are unique, every link sends to a sink that
// exists, the sinks form no cycle, and frames reach only links and sinks of their kind
// (Ethernet or IP).
#pragma once

#include "config/config.hpp"

namespace fdlinkd {

/// Duplicate link names and duplicate sink names.
void check_names(const Config& c, ConfigErrors& errors);
/// Each link's sink exists; the stage graph's outputs exist, form no cycle, and carry frames
/// of the kind each link and sink takes.
void check_graph(const Config& c, ConfigErrors& errors);

}  // namespace fdlinkd
