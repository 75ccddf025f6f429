// Logs: text for people, one valid JSON object per line for machines.
#include <catch2/catch.hpp>

#include "core/log.hpp"

using fdlinkd::log::Field;
using fdlinkd::log::Format;
using fdlinkd::log::Level;
using fdlinkd::log::render;

TEST_CASE("json log lines carry ts level event msg and typed fields") {
  const Field f[] = {{"link", "a"}, {"rx_packets", std::uint64_t{42}}, {"final", true}};
  CHECK(render(Format::json, Level::info, "stats", "counters", f, "2026-01-02T03:04:05.000006Z") ==
        R"({"ts":"2026-01-02T03:04:05.000006Z","level":"info","event":"stats","msg":"counters",)"
        R"("link":"a","rx_packets":42,"final":true})");
}

TEST_CASE("json log lines escape what would break them") {
  const Field f[] = {{"path", "/tmp/a\"b\\c\n\x01{}"}};
  CHECK(
      render(Format::json, Level::error, "e", "say \"hi\"\t", f, "T") ==
      R"({"ts":"T","level":"error","event":"e","msg":"say \"hi\"\t","path":"/tmp/a\"b\\c\n\u0001{}"})");
}

TEST_CASE("text log lines quote values with spaces") {
  const Field f[] = {{"link", "a"}, {"error", "No such device"}, {"n", 3}};
  CHECK(render(Format::text, Level::warn, "link_rx_error", "read failed", f, "T") ==
        R"(T warn link_rx_error: read failed link=a error="No such device" n=3)");
}

TEST_CASE("log levels and formats parse from their names") {
  CHECK(fdlinkd::log::parse_level("warn") == Level::warn);
  CHECK_FALSE(fdlinkd::log::parse_level("verbose"));
  CHECK(fdlinkd::log::parse_format("json") == Format::json);
  CHECK_FALSE(fdlinkd::log::parse_format("xml"));
}

TEST_CASE("json log lines keep valid UTF-8 and write invalid bytes as text") {
  // "é" and "€" are valid; 0xff, a lone continuation byte, an overlong "/" and a truncated
  // sequence are not.
  const Field f[] = {{"path", "/tmp/\xc3\xa9\xe2\x82\xac-\xff-\x80-\xc0\xaf-\xe2\x82"}};
  CHECK(render(Format::json, Level::error, "e", "m", f, "T") ==
        R"({"ts":"T","level":"error","event":"e","msg":"m",)"
        R"("path":"/tmp/)"
        "\xc3\xa9\xe2\x82\xac"
        R"(-\\xff-\\x80-\\xc0\\xaf-\\xe2\\x82"})");
}
