// libFuzzer target: arbitrary text as a config file, through the whole reader: the depth and
// key-length checks that run before toml++, toml++'s parser, every table's keys and values,
// every sink type's options and the checks across the file (names, outputs, cycles). Nothing
// may crash, hang or hit undefined behaviour; the outcome must be a config or errors, never
// both or neither, with at most ConfigErrors::kMaxKept errors kept and each cut to the
// message limit. Seeded with the example config and every case of the bad-config tests.
#include <cstdint>
#include <string>
#include <string_view>

#include "check.hpp"
#include "config/config.hpp"
#include "core/log.hpp"
#include "runtime/kinds.hpp"

using namespace fdlinkd;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // A plugin sink's path is dlopen()ed while the config is validated: leave real shared
  // objects out of it (a fuzzer must not run their constructors).
  if (text.find(".so") != std::string_view::npos) return 0;
  // [daemon] include reads the files its patterns match: leave the machine's files out too
  // (the unit tests cover drop-ins).
  if (text.find("include") != std::string_view::npos) return 0;
  const ConfigResult r = parse_config(text, "fuzz.toml");
  if (r.config) {
    FUZZ_CHECK(r.errors.empty() && r.error_count == 0);
    // A valid config's links each feed a sink that exists, and its names are unique.
    for (const auto& l : r.config->links) {
      FUZZ_CHECK(!l.name.empty());
      FUZZ_CHECK(r.config->find_link(l.name) == &l);
      FUZZ_CHECK(r.config->find_sink(l.sink) != nullptr);
      FUZZ_CHECK(l.wire_capacity() <= l.rx_capacity());
    }
    for (const auto& s : r.config->sinks) {
      FUZZ_CHECK(s.type != nullptr && s.options != nullptr);
      FUZZ_CHECK(r.config->find_sink(s.name) == &s);
    }
  } else {
    FUZZ_CHECK(!r.errors.empty());
    FUZZ_CHECK(r.errors.size() <= ConfigErrors::kMaxKept && r.errors.size() <= r.error_count);
    for (const auto& e : r.errors) {
      FUZZ_CHECK(!e.message.empty());
      FUZZ_CHECK(e.message.size() <= ConfigErrors::kMaxMessage + 64);
      FUZZ_CHECK(e.file == "fuzz.toml");
      FUZZ_CHECK(e.to_string().find('\n') == std::string::npos);  // one line per error
    }
  }
  return 0;
}
