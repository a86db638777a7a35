#include "host/dmar.h"

namespace rr::dmar {

namespace {

constexpr size_t kHeaderSize = 48;  // 36-byte ACPI header + width + flags + 10 reserved
constexpr size_t kScopeHeader = 6;

Error bad(size_t offset, std::string_view what) {
  return make_error(ExitCode::bad_input, "DMAR table malformed at offset {:#x}: {}", offset, what);
}

Result<std::vector<DeviceScope>> decode_scopes(ByteView table, size_t begin, size_t end) {
  std::vector<DeviceScope> scopes;
  size_t at = begin;
  while (at < end) {
    if (end - at < kScopeHeader)
      return bad(at, fmt::format("device scope needs {} bytes, {} left in its structure", kScopeHeader, end - at));
    uint8_t type = *table.read<uint8_t>(at);
    uint8_t len = *table.read<uint8_t>(at + 1);
    if (len < kScopeHeader) return bad(at, fmt::format("device scope length {} is shorter than its {}-byte header", len, kScopeHeader));
    if (len > end - at) return bad(at, fmt::format("device scope length {} runs past its structure ({} bytes left)", len, end - at));
    if ((len - kScopeHeader) % 2 != 0) return bad(at, fmt::format("device scope length {} leaves half a path entry", len));
    DeviceScope s;
    s.type = type;
    s.offset = at;
    s.enumeration_id = *table.read<uint8_t>(at + 4);
    s.start_bus = *table.read<uint8_t>(at + 5);
    for (size_t p = at + kScopeHeader; p < at + len; p += 2)
      s.path.push_back(PathEntry{*table.read<uint8_t>(p), *table.read<uint8_t>(p + 1)});
    scopes.push_back(std::move(s));
    at += len;
  }
  return scopes;
}

// Fixed part of each known structure; the rest up to its length is device scopes (where it has any).
size_t fixed_size(uint16_t type) {
  switch (static_cast<StructType>(type)) {
    case StructType::drhd: return 16;
    case StructType::rmrr: return 24;
    case StructType::atsr: return 8;
    case StructType::rhsa: return 20;
    case StructType::andd: return 8;
    case StructType::satc: return 8;
    case StructType::sidp: return 8;
  }
  return 4;
}

}  // namespace

std::string scope_type_name(uint8_t type) {
  switch (type) {
    case 1: return "endpoint";
    case 2: return "bridge";
    case 3: return "ioapic";
    case 4: return "hpet";
    case 5: return "namespace";
  }
  return fmt::format("unknown({})", type);
}

std::string struct_type_name(uint16_t type) {
  switch (type) {
    case 0: return "drhd";
    case 1: return "rmrr";
    case 2: return "atsr";
    case 3: return "rhsa";
    case 4: return "andd";
    case 5: return "satc";
    case 6: return "sidp";
  }
  return fmt::format("unknown({})", type);
}

uint8_t checksum_of(ByteView bytes) {
  uint8_t sum = 0;
  for (size_t i = 0; i < bytes.size(); ++i) sum = static_cast<uint8_t>(sum + bytes.data()[i]);
  return sum;
}

Result<Table> decode(ByteView bytes, const DecodeOptions& options) {
  if (bytes.size() < kHeaderSize)
    return make_error(ExitCode::bad_input, "DMAR table truncated: {} bytes, the header alone needs {}", bytes.size(), kHeaderSize);
  if (bytes.string_at(0, 4) != "DMAR") return make_error(ExitCode::bad_input, "not a DMAR table: signature is '{}'", bytes.string_at(0, 4));
  Table t;
  t.length = *bytes.read<uint32_t>(4);
  if (t.length < kHeaderSize) return bad(4, fmt::format("table length {} is shorter than the {}-byte header", t.length, kHeaderSize));
  if (t.length > bytes.size())
    return make_error(ExitCode::bad_input, "DMAR table truncated: header says {} bytes, only {} present", t.length, bytes.size());
  ByteView table = *bytes.sub(0, t.length);
  if (bytes.size() > t.length)
    t.notes.push_back(fmt::format("{} bytes after the table's stated length were ignored", bytes.size() - t.length));

  t.revision = *table.read<uint8_t>(8);
  t.checksum = *table.read<uint8_t>(9);
  t.checksum_ok = checksum_of(table) == 0;
  if (!t.checksum_ok) {
    if (options.require_valid_checksum)
      return make_error(ExitCode::bad_input, "DMAR table checksum is wrong (bytes sum to {:#04x}, must be 0): the table is corrupt",
                        checksum_of(table));
    t.notes.push_back("checksum is wrong; decoded anyway");
  }
  t.oem_id = table.string_at(10, 6);
  t.oem_table_id = table.string_at(16, 8);
  t.oem_revision = *table.read<uint32_t>(24);
  t.creator_id = table.string_at(28, 4);
  t.creator_revision = *table.read<uint32_t>(32);
  t.host_address_width = static_cast<unsigned>(*table.read<uint8_t>(36)) + 1;
  t.flags = *table.read<uint8_t>(37);

  size_t at = kHeaderSize;
  while (at < t.length) {
    if (t.length - at < 4) return bad(at, fmt::format("remapping structure header needs 4 bytes, {} left", t.length - at));
    uint16_t type = *table.read<uint16_t>(at);
    uint16_t len = *table.read<uint16_t>(at + 2);
    if (len < 4) return bad(at, fmt::format("{} structure has length {}, shorter than its own header", struct_type_name(type), len));
    if (len > t.length - at)
      return bad(at, fmt::format("{} structure length {} runs past the end of the table ({} bytes left)", struct_type_name(type), len,
                                 t.length - at));
    size_t fixed = fixed_size(type);
    if (len < fixed)
      return bad(at, fmt::format("{} structure length {} is shorter than its fixed part ({} bytes)", struct_type_name(type), len, fixed));
    size_t end = at + len;
    switch (type) {
      case 0: {
        Drhd d;
        d.offset = at;
        d.flags = *table.read<uint8_t>(at + 4);
        d.segment = *table.read<uint16_t>(at + 6);
        d.register_base = *table.read<uint64_t>(at + 8);
        RR_ASSIGN(d.scopes, decode_scopes(table, at + fixed, end));
        t.drhds.push_back(std::move(d));
        break;
      }
      case 1: {
        Rmrr r;
        r.offset = at;
        r.segment = *table.read<uint16_t>(at + 6);
        r.base = *table.read<uint64_t>(at + 8);
        r.limit = *table.read<uint64_t>(at + 16);
        RR_ASSIGN(r.scopes, decode_scopes(table, at + fixed, end));
        if (r.limit < r.base)
          t.notes.push_back(fmt::format("RMRR at offset {:#x} ends ({:#x}) before it begins ({:#x})", at, r.limit, r.base));
        if (r.base % 4096 != 0 || (r.limit + 1) % 4096 != 0)
          t.notes.push_back(
              fmt::format("RMRR at offset {:#x} [{:#x}-{:#x}] is not page aligned; the kernel warns about it", at, r.base, r.limit));
        t.rmrrs.push_back(std::move(r));
        break;
      }
      case 2: {
        Atsr a;
        a.offset = at;
        a.flags = *table.read<uint8_t>(at + 4);
        a.segment = *table.read<uint16_t>(at + 6);
        RR_ASSIGN(a.scopes, decode_scopes(table, at + fixed, end));
        t.atsrs.push_back(std::move(a));
        break;
      }
      default: {
        OtherStruct o;
        o.type = type;
        o.length = len;
        o.offset = at;
        o.raw.assign(table.data() + at, table.data() + end);
        if (type == 3) {
          o.detail = fmt::format("register base {:#x}, proximity domain {}", *table.read<uint64_t>(at + 8), *table.read<uint32_t>(at + 16));
        } else if (type == 4) {
          std::string name = table.string_at(at + 8, len - 8);
          name = name.substr(0, name.find('\0'));
          o.detail = fmt::format("ACPI device number {}, object {}", *table.read<uint8_t>(at + 7), name);
        } else if (type == 5 || type == 6) {
          o.detail = fmt::format("segment {}", *table.read<uint16_t>(at + 6));
          RR_ASSIGN(o.scopes, decode_scopes(table, at + fixed, end));
        } else {
          t.notes.push_back(fmt::format("structure type {} at offset {:#x} is unknown to this decoder; skipped", type, at));
        }
        t.others.push_back(std::move(o));
      }
    }
    at = end;
  }
  return t;
}

namespace {

template <typename T>
void put(Bytes& out, T value) {
  uint8_t b[sizeof(T)];
  std::memcpy(b, &value, sizeof(T));
  out.insert(out.end(), b, b + sizeof(T));
}

void put_text(Bytes& out, const std::string& s, size_t width) {
  for (size_t i = 0; i < width; ++i) out.push_back(i < s.size() ? static_cast<uint8_t>(s[i]) : ' ');
}

void put_scopes(Bytes& out, const std::vector<DeviceScope>& scopes) {
  for (const auto& s : scopes) {
    put<uint8_t>(out, s.type);
    put<uint8_t>(out, static_cast<uint8_t>(kScopeHeader + 2 * s.path.size()));
    put<uint16_t>(out, 0);
    put<uint8_t>(out, s.enumeration_id);
    put<uint8_t>(out, s.start_bus);
    for (const auto& p : s.path) {
      put<uint8_t>(out, p.device);
      put<uint8_t>(out, p.function);
    }
  }
}

// Writes a structure whose length is only known once its body is written.
template <typename Body>
void put_struct(Bytes& out, uint16_t type, Body body) {
  size_t start = out.size();
  put<uint16_t>(out, type);
  put<uint16_t>(out, 0);
  body();
  uint16_t len = static_cast<uint16_t>(out.size() - start);
  std::memcpy(&out[start + 2], &len, 2);
}

}  // namespace

Bytes encode(const Table& t) {
  Bytes out;
  put_text(out, "DMAR", 4);
  put<uint32_t>(out, 0);  // length, patched below
  put<uint8_t>(out, t.revision);
  put<uint8_t>(out, 0);  // checksum, patched below
  put_text(out, t.oem_id, 6);
  put_text(out, t.oem_table_id, 8);
  put<uint32_t>(out, t.oem_revision);
  put_text(out, t.creator_id, 4);
  put<uint32_t>(out, t.creator_revision);
  put<uint8_t>(out, static_cast<uint8_t>(t.host_address_width - 1));
  put<uint8_t>(out, t.flags);
  out.resize(kHeaderSize, 0);
  for (const auto& d : t.drhds)
    put_struct(out, 0, [&] {
      put<uint8_t>(out, d.flags);
      put<uint8_t>(out, 0);
      put<uint16_t>(out, d.segment);
      put<uint64_t>(out, d.register_base);
      put_scopes(out, d.scopes);
    });
  for (const auto& r : t.rmrrs)
    put_struct(out, 1, [&] {
      put<uint16_t>(out, 0);
      put<uint16_t>(out, r.segment);
      put<uint64_t>(out, r.base);
      put<uint64_t>(out, r.limit);
      put_scopes(out, r.scopes);
    });
  for (const auto& a : t.atsrs)
    put_struct(out, 2, [&] {
      put<uint8_t>(out, a.flags);
      put<uint8_t>(out, 0);
      put<uint16_t>(out, a.segment);
      put_scopes(out, a.scopes);
    });
  for (const auto& o : t.others) out.insert(out.end(), o.raw.begin(), o.raw.end());
  uint32_t len = static_cast<uint32_t>(out.size());
  std::memcpy(&out[4], &len, 4);
  out[9] = static_cast<uint8_t>(0x100 - checksum_of(ByteView(out)));
  return out;
}

DeviceScope make_scope(ScopeType type, uint8_t start_bus, std::vector<PathEntry> path) {
  DeviceScope s;
  s.type = static_cast<uint8_t>(type);
  s.start_bus = start_bus;
  s.path = std::move(path);
  return s;
}

Result<Table> decode_file(const std::filesystem::path& path, const DecodeOptions& options) {
  RR_ASSIGN(Bytes bytes, read_file_bytes(path, 1 << 20));
  auto r = decode(ByteView(bytes), options);
  if (!r) return r.error().with_context(path.string());
  return r;
}

Json to_json(const DeviceScope& s) {
  Json path = Json::array();
  for (const auto& p : s.path) path.push(Json(Json::Array{Json(p.device), Json(p.function)}));
  Json j = Json::object();
  j.set("type", scope_type_name(s.type));
  j.set("enumeration_id", s.enumeration_id);
  j.set("start_bus", s.start_bus);
  j.set("path", std::move(path));
  return j;
}

static Json scopes_json(const std::vector<DeviceScope>& scopes) {
  Json a = Json::array();
  for (const auto& s : scopes) a.push(to_json(s));
  return a;
}

Json to_json(const Table& t) {
  Json j = Json::object();
  j.set("revision", t.revision);
  j.set("oem_id", t.oem_id);
  j.set("oem_table_id", t.oem_table_id);
  j.set("oem_revision", t.oem_revision);
  j.set("creator_id", t.creator_id);
  j.set("creator_revision", t.creator_revision);
  j.set("length", t.length);
  j.set("host_address_width", t.host_address_width);
  j.set("flags", t.flags);
  j.set("checksum_ok", t.checksum_ok);
  Json rmrr = Json::array();
  for (const auto& r : t.rmrrs) {
    Json o = Json::object();
    o.set("segment", r.segment);
    o.set("base", r.base);
    o.set("limit", r.limit);
    o.set("scopes", scopes_json(r.scopes));
    rmrr.push(std::move(o));
  }
  j.set("rmrr", std::move(rmrr));
  Json drhd = Json::array();
  for (const auto& d : t.drhds) {
    Json o = Json::object();
    o.set("flags", d.flags);
    o.set("segment", d.segment);
    o.set("register_base", d.register_base);
    o.set("scopes", scopes_json(d.scopes));
    drhd.push(std::move(o));
  }
  j.set("drhd", std::move(drhd));
  Json atsr = Json::array();
  for (const auto& a : t.atsrs) {
    Json o = Json::object();
    o.set("flags", a.flags);
    o.set("segment", a.segment);
    o.set("scopes", scopes_json(a.scopes));
    atsr.push(std::move(o));
  }
  j.set("atsr", std::move(atsr));
  Json other = Json::array();
  for (const auto& o : t.others) {
    Json x = Json::object();
    x.set("type", struct_type_name(o.type));
    if (o.type > 6) x.set("type_id", o.type);
    x.set("length", o.length);
    if (!o.detail.empty()) x.set("detail", o.detail);
    if (!o.scopes.empty()) x.set("scopes", scopes_json(o.scopes));
    other.push(std::move(x));
  }
  j.set("other", std::move(other));
  j.set("notes", Json::strings(t.notes));
  return j;
}

std::string format_path(const DeviceScope& s) {
  std::string out = fmt::format("{:02x}:", s.start_bus);
  for (size_t i = 0; i < s.path.size(); ++i) out += fmt::format("{}{:02x}.{:x}", i ? "/" : "", s.path[i].device, s.path[i].function);
  return out;
}

}  // namespace rr::dmar
