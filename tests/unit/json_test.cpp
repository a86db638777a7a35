#include "common/json.h"

#include <gtest/gtest.h>

using rr::Json;

TEST(Json, RoundTripsNestedValues) {
  Json j = Json::object();
  j.set("name", "HP    ");
  j.set("big", uint64_t{0xfffffffffffff000});
  j.set("neg", -5);
  j.set("list", Json(Json::Array{Json(1), Json(true), Json(nullptr), Json("a\"b\n")}));
  auto parsed = Json::parse(j.dump(2));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->dump(), j.dump());
  EXPECT_EQ((*parsed)["big"].as_uint(), 0xfffffffffffff000u);
  EXPECT_EQ((*parsed)["neg"].as_int(), -5);
  EXPECT_EQ((*parsed)["list"][3].as_string(), "a\"b\n");
}

TEST(Json, EscapesNonAsciiBytesSoOutputStaysValid) {
  Json j(std::string("\xff\x01", 2));
  EXPECT_EQ(j.dump(), "\"\\u00ff\\u0001\"");
  auto back = Json::parse(j.dump());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->as_string(), std::string("\xff\x01", 2));
}

TEST(Json, RejectsMalformedText) {
  for (const char* bad : {"", "{", "[1,]", "{\"a\" 1}", "tru", "\"abc", "1 2", "{\"a\":}"}) {
    auto r = Json::parse(bad);
    EXPECT_FALSE(r.ok()) << bad;
  }
}
