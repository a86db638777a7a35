// Shared by the fuzz targets: the input as bytes or text, without copies where the parser takes a view.
#pragma once

#include "common/file.h"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace rr::fuzz {

inline ByteView bytes(const uint8_t* data, size_t size) { return ByteView(data, size); }
inline std::string_view text(const uint8_t* data, size_t size) { return std::string_view(reinterpret_cast<const char*>(data), size); }

// Keeps a value alive past the optimiser, so the work that produced it is not dropped.
template <typename T>
inline void consume(const T& value) {
  asm volatile("" : : "r"(&value) : "memory");
}

}  // namespace rr::fuzz
