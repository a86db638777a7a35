// Differences between the libbpf versions relax-rmrr builds against, in one place: Debian 11 ships libbpf 0.3
// with the 5.10 <linux/btf.h>, Debian 12 on libbpf 1.x. generator/CMakeLists.txt detects what the installed
// libbpf has (RELAX_RMRR_HAVE_*); every user of libbpf's type ids and kinds goes through this header.
#pragma once

#include <bpf/btf.h>

#include <cstdint>

#if !defined(RELAX_RMRR_HAVE_BTF_TYPE_CNT) || !defined(RELAX_RMRR_HAVE_BTF_KIND_TYPE_TAG)
#error "RELAX_RMRR_HAVE_BTF_* come from generator/CMakeLists.txt (link relax_rmrr_core)"
#endif

namespace rr::analysis::btf_compat {

// The number of type ids of a BTF object, void (id 0) included: valid ids are 1 .. type_count() - 1.
// libbpf >= 0.7 has btf__type_cnt() for exactly that; older ones have btf__get_nr_types(), which counts the
// types without void, so it is one less.
inline uint32_t type_count(const struct btf* b) {
#if RELAX_RMRR_HAVE_BTF_TYPE_CNT
  return btf__type_cnt(b);
#else
  return btf__get_nr_types(b) + 1;
#endif
}

// BTF_KIND_TYPE_TAG (kernel 5.16's <linux/btf.h>): an older header lacks the enumerator, and a libbpf that
// old never parses such a type, so the value only has to be right, not reachable.
#if RELAX_RMRR_HAVE_BTF_KIND_TYPE_TAG
inline constexpr int kKindTypeTag = BTF_KIND_TYPE_TAG;
#else
inline constexpr int kKindTypeTag = 18;
#endif

}  // namespace rr::analysis::btf_compat
