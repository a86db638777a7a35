// SHA-256 (FIPS 180-4), for content-addressed caches: no crypto library is needed for a cache key.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace rr {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  std::array<uint8_t, 32> finish();
  std::string hex();  // finish() as lower-case hex

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buf_{};
  size_t buffered_ = 0;
  uint64_t total_ = 0;
};

}  // namespace rr
