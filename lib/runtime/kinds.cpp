#include "runtime/kinds.hpp"

#include "link/link_types.hpp"
#include "sink/sink.hpp"

namespace fdlinkd {

const ConfigKinds& config_kinds() {
  static const ConfigKinds kinds{link_kinds(), sink_kinds()};
  return kinds;
}

}  // namespace fdlinkd
