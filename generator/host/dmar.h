// The ACPI DMAR table (Intel VT-d): decoded from raw bytes into plain structs. Never reads past a
// structure or the table; a malformed table is an Error naming the byte offset.
#pragma once

#include "common/file.h"
#include "common/json.h"
#include "common/result.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace rr::dmar {

enum class ScopeType : uint8_t { endpoint = 1, bridge = 2, ioapic = 3, hpet = 4, namespace_device = 5 };
std::string scope_type_name(uint8_t type);

enum class StructType : uint16_t { drhd = 0, rmrr = 1, atsr = 2, rhsa = 3, andd = 4, satc = 5, sidp = 6 };
std::string struct_type_name(uint16_t type);

struct PathEntry {
  uint8_t device = 0;
  uint8_t function = 0;
  bool operator==(const PathEntry&) const = default;
};

struct DeviceScope {
  uint8_t type = 0;
  uint8_t enumeration_id = 0;
  uint8_t start_bus = 0;
  std::vector<PathEntry> path;
  size_t offset = 0;  // in the table, for messages
};

struct Drhd {
  uint8_t flags = 0;  // bit 0: INCLUDE_PCI_ALL
  uint16_t segment = 0;
  uint64_t register_base = 0;
  std::vector<DeviceScope> scopes;
  size_t offset = 0;
};

struct Rmrr {
  uint16_t segment = 0;
  uint64_t base = 0;
  uint64_t limit = 0;  // inclusive
  std::vector<DeviceScope> scopes;
  size_t offset = 0;
};

struct Atsr {
  uint8_t flags = 0;
  uint16_t segment = 0;
  std::vector<DeviceScope> scopes;
  size_t offset = 0;
};

// Structures relax-rmrr does not need field by field (RHSA, ANDD, SATC, SIDP, unknown types).
struct OtherStruct {
  uint16_t type = 0;
  uint16_t length = 0;
  size_t offset = 0;
  std::string detail;  // e.g. ANDD's ACPI object name, RHSA's proximity domain
  std::vector<DeviceScope> scopes;
  Bytes raw;  // the whole structure, so encode() writes it back unchanged
};

struct Table {
  uint32_t length = 0;
  uint8_t revision = 0;
  uint8_t checksum = 0;
  bool checksum_ok = false;
  std::string oem_id;  // 6 bytes, padding kept
  std::string oem_table_id;  // 8 bytes, padding kept
  uint32_t oem_revision = 0;
  std::string creator_id;
  uint32_t creator_revision = 0;
  unsigned host_address_width = 0;  // the real width: the table stores width - 1
  uint8_t flags = 0;
  std::vector<Drhd> drhds;
  std::vector<Rmrr> rmrrs;
  std::vector<Atsr> atsrs;
  std::vector<OtherStruct> others;
  std::vector<std::string> notes;  // oddities worth telling a user, not fatal
};

struct DecodeOptions {
  // The kernel uses a table with a bad checksum (and warns); a decoder for humans should refuse by default.
  bool require_valid_checksum = true;
};

Result<Table> decode(ByteView bytes, const DecodeOptions& options = {});
Result<Table> decode_file(const std::filesystem::path& path, const DecodeOptions& options = {});

uint8_t checksum_of(ByteView bytes);

// The inverse of decode(): DRHDs, then RMRRs, then ATSRs, then the other structures, with length and
// checksum computed. Used to build test tables (QEMU's DMAR plus an RMRR) and checked by round trips.
Bytes encode(const Table& table);
DeviceScope make_scope(ScopeType type, uint8_t start_bus,
                       std::vector<PathEntry> path);  // sum of all bytes mod 256; 0 for a valid ACPI table

Json to_json(const Table& table);
Json to_json(const DeviceScope& scope);
std::string format_path(const DeviceScope& scope);  // "00:[02.0/00.0]"-style for humans

}  // namespace rr::dmar
