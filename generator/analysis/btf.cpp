#include "analysis/btf.h"

#include "analysis/btf_compat.h"
#include "elf/elf_file.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <mutex>

namespace rr::analysis {

namespace {

// libbpf prints its diagnostics to stderr by default; keep the last one for our own message instead.
thread_local std::string g_last_libbpf_message;

int quiet_print(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char buf[512];
  int n = std::vsnprintf(buf, sizeof buf, format, args);
  g_last_libbpf_message = trim(buf);
  return n;
}

void install_quiet_print() {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(quiet_print); });
}

const struct btf_type* skip_qualifiers(const struct btf* b, uint32_t id) {
  const struct btf_type* t = btf__type_by_id(b, id);
  for (int guard = 0; t && guard < 32; ++guard) {
    int k = btf_kind(t);
    if (k != BTF_KIND_TYPEDEF && k != BTF_KIND_CONST && k != BTF_KIND_VOLATILE && k != BTF_KIND_RESTRICT && k != btf_compat::kKindTypeTag)
      return t;
    t = btf__type_by_id(b, t->type);
  }
  return t;
}

std::optional<BtfMember> find_member(const struct btf* b, const struct btf_type* t, std::string_view name, uint64_t base_bits, int depth) {
  if (!t || depth > 8 || (!btf_is_struct(t) && !btf_is_union(t))) return std::nullopt;
  const struct btf_member* m = btf_members(t);
  uint16_t n = btf_vlen(t);
  for (uint16_t i = 0; i < n; ++i) {
    const char* mname = btf__name_by_offset(b, m[i].name_off);
    uint64_t off = base_bits + btf_member_bit_offset(t, i);
    if (mname && *mname) {
      if (name == mname) return BtfMember{mname, off, btf_member_bitfield_size(t, i), m[i].type};
      continue;
    }
    // Anonymous struct/union: its members belong to the outer struct.
    if (auto inner = find_member(b, skip_qualifiers(b, m[i].type), name, off, depth + 1)) return inner;
  }
  return std::nullopt;
}

}  // namespace

Result<Btf> Btf::from_bytes(ByteView raw, std::string origin) {
  install_quiet_print();
  if (raw.size() == 0 || raw.size() > UINT32_MAX) return make_error(ExitCode::bad_input, "{}: BTF of {} bytes", origin, raw.size());
  g_last_libbpf_message.clear();
  errno = 0;
  struct btf* b = btf__new(raw.data(), static_cast<uint32_t>(raw.size()));
  long err = libbpf_get_error(b);
  if (!b || err) {
    int e = err ? static_cast<int>(-err) : (errno ? errno : EINVAL);
    return make_error(ExitCode::bad_input, "{}: not valid BTF ({}{}{})", origin, std::strerror(e),
                      g_last_libbpf_message.empty() ? "" : ": ", g_last_libbpf_message);
  }
  Btf out;
  out.btf_ = b;
  out.origin_ = std::move(origin);
  return out;
}

Result<Btf> Btf::open(const std::filesystem::path& path) {
  RR_ASSIGN(Bytes bytes, read_file_bytes(path, size_t{2} << 30));
  if (bytes.size() >= 4 && bytes[0] == 0x7f && bytes[1] == 'E' && bytes[2] == 'L' && bytes[3] == 'F') {
    RR_ASSIGN(elf::ElfFile elf, elf::ElfFile::from_bytes(std::move(bytes), path.string()));
    return from_elf(elf);
  }
  return from_bytes(ByteView(bytes.data(), bytes.size()), path.string());
}

Result<Btf> Btf::from_elf(const elf::ElfFile& elf) {
  auto data = elf.section_data(".BTF");
  if (!data) {
    Error e = data.error();
    e.message = fmt::format("{}: no .BTF section (kernel built without CONFIG_DEBUG_INFO_BTF?)", elf.origin());
    return e;
  }
  return from_bytes(*data, elf.origin() + " (.BTF)");
}

Btf::Btf(Btf&& other) noexcept : btf_(std::exchange(other.btf_, nullptr)), origin_(std::move(other.origin_)) {}

Btf& Btf::operator=(Btf&& other) noexcept {
  if (this != &other) {
    if (btf_) btf__free(btf_);
    btf_ = std::exchange(other.btf_, nullptr);
    origin_ = std::move(other.origin_);
  }
  return *this;
}

Btf::~Btf() {
  if (btf_) btf__free(btf_);
}

uint32_t Btf::type_count() const { return btf_compat::type_count(btf_); }

std::optional<uint32_t> Btf::find(std::string_view name, int kind) const {
  std::string n(name);
  int32_t id = btf__find_by_name_kind(btf_, n.c_str(), static_cast<uint32_t>(kind));
  if (id <= 0) return std::nullopt;
  return static_cast<uint32_t>(id);
}

std::optional<uint64_t> Btf::struct_size(std::string_view name) const {
  auto id = find(name, BTF_KIND_STRUCT);
  if (!id) id = find(name, BTF_KIND_UNION);
  if (!id) return std::nullopt;
  const struct btf_type* t = btf__type_by_id(btf_, *id);
  if (!t) return std::nullopt;
  return t->size;
}

std::optional<uint64_t> Btf::struct_data_end(std::string_view name) const {
  auto id = find(name, BTF_KIND_STRUCT);
  if (!id) return std::nullopt;
  const struct btf_type* t = btf__type_by_id(btf_, *id);
  if (!t) return std::nullopt;
  const struct btf_member* m = btf_members(t);
  uint64_t end_bits = 0;
  for (uint16_t i = 0; i < btf_vlen(t); ++i) {
    uint64_t bits = btf_member_bitfield_size(t, i);
    if (bits == 0) {
      long long size = btf__resolve_size(btf_, m[i].type);
      if (size < 0) return std::nullopt;
      bits = static_cast<uint64_t>(size) * 8;
    }
    end_bits = std::max<uint64_t>(end_bits, btf_member_bit_offset(t, i) + bits);
  }
  return (end_bits + 7) / 8;
}

std::optional<BtfMember> Btf::member(std::string_view struct_name, std::string_view member_name) const {
  auto id = find(struct_name, BTF_KIND_STRUCT);
  if (!id) id = find(struct_name, BTF_KIND_UNION);
  if (!id) return std::nullopt;
  return find_member(btf_, btf__type_by_id(btf_, *id), member_name, 0, 0);
}

std::optional<BtfFunction> Btf::function(std::string_view name) const {
  auto id = find(name, BTF_KIND_FUNC);
  if (!id) return std::nullopt;
  const struct btf_type* f = btf__type_by_id(btf_, *id);
  if (!f) return std::nullopt;
  BtfFunction out;
  out.name = std::string(name);
  out.global = btf_vlen(f) != BTF_FUNC_STATIC;  // a FUNC keeps its linkage in vlen
  const struct btf_type* proto = btf__type_by_id(btf_, f->type);
  if (proto && btf_is_func_proto(proto)) {
    const struct btf_param* p = btf_params(proto);
    for (uint16_t i = 0; i < btf_vlen(proto); ++i) {
      const char* pn = btf__name_by_offset(btf_, p[i].name_off);
      out.params.emplace_back(pn ? pn : "");
    }
  }
  return out;
}

const std::vector<std::string>& special_section_structs() {
  static const std::vector<std::string> names{
      "bug_entry",  // __bug_table
      "jump_entry",  // __jump_table
      "alt_instr",  // .altinstructions
      "static_call_site",  // .static_call_sites
      "orc_entry",  // .orc_unwind
      "exception_table_entry",  // __ex_table
      "paravirt_patch_site",  // .parainstructions (before 6.8)
  };
  return names;
}

BtfFacts collect_btf_facts(const Btf& btf, const std::vector<std::string>& functions) {
  BtfFacts f;
  f.origin = btf.origin();
  f.type_count = btf.type_count();
  f.dev_iommu_size = btf.struct_size("dev_iommu");
  f.has_dev_iommu = f.dev_iommu_size.has_value();
  if (f.has_dev_iommu) f.require_direct = btf.member("dev_iommu", "require_direct");
  for (const auto& s : special_section_structs()) f.entry_sizes.emplace_back(s, btf.struct_size(s));
  for (const auto& fn : functions) f.functions.emplace_back(fn, btf.function(fn));
  return f;
}

}  // namespace rr::analysis
