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

#include "common/sha256.h"

TEST(Sha256, KnownVectors) {
  auto hex = [](std::string_view s) {
    rr::Sha256 h;
    h.update(s.data(), s.size());
    return h.hex();
  };
  EXPECT_EQ(hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // Fed in uneven pieces, a million 'a's.
  rr::Sha256 h;
  std::string chunk(997, 'a');
  size_t left = 1000000;
  while (left) {
    size_t n = std::min(left, chunk.size());
    h.update(chunk.data(), n);
    left -= n;
  }
  EXPECT_EQ(h.hex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
