// relax-rmrr dmar [FILE] [--json]: decode an ACPI DMAR table.
#include "cli/commands.h"
#include "cli/output.h"
#include "host/dmar.h"

#include <fmt/core.h>

namespace rr::cli {

namespace {

struct DmarOptions {
  std::string file = "/sys/firmware/acpi/tables/DMAR";
  bool json = false;
  bool ignore_checksum = false;
};

void print_scopes(const std::vector<dmar::DeviceScope>& scopes) {
  for (const auto& s : scopes)
    fmt::print("      scope {:<9} {}{}\n", dmar::scope_type_name(s.type), dmar::format_path(s),
               s.type >= 3 ? fmt::format("  (enumeration id {})", s.enumeration_id) : "");
}

void print_report(const dmar::Table& t, const std::string& file) {
  fmt::print("DMAR table {}\n", file);
  fmt::print("  OEM '{}' table '{}' revision {} (OEM revision {:#x}), {} bytes, checksum {}\n", t.oem_id, t.oem_table_id, t.revision,
             t.oem_revision, t.length, t.checksum_ok ? "ok" : "WRONG");
  fmt::print("  host address width {} bits, flags {:#x}{}{}\n", t.host_address_width, t.flags,
             (t.flags & 1) ? " (interrupt remapping)" : "", (t.flags & 2) ? " (x2APIC opt-out)" : "");
  for (const auto& d : t.drhds) {
    fmt::print("  DRHD  segment {} registers {:#x}{}\n", d.segment, d.register_base, (d.flags & 1) ? " INCLUDE_PCI_ALL" : "");
    print_scopes(d.scopes);
  }
  for (const auto& r : t.rmrrs) {
    fmt::print("  RMRR  segment {} [{:#x}-{:#x}] ({} KiB)\n", r.segment, r.base, r.limit,
               r.limit >= r.base ? (r.limit - r.base + 1) / 1024 : 0);
    print_scopes(r.scopes);
  }
  for (const auto& a : t.atsrs) {
    fmt::print("  ATSR  segment {}{}\n", a.segment, (a.flags & 1) ? " ALL_PORTS" : "");
    print_scopes(a.scopes);
  }
  for (const auto& o : t.others) {
    fmt::print("  {:<5} {} bytes{}{}\n", dmar::struct_type_name(o.type), o.length, o.detail.empty() ? "" : ", ", o.detail);
    print_scopes(o.scopes);
  }
  for (const auto& n : t.notes) fmt::print("  note: {}\n", n);
  if (t.rmrrs.empty()) fmt::print("  no RMRR: no device on this table is RMRR-locked\n");
}

}  // namespace

Command add_dmar_command(CLI::App& root) {
  auto opts = std::make_shared<DmarOptions>();
  CLI::App* app = root.add_subcommand("dmar", "Decode an ACPI DMAR table: DRHD units, RMRR regions and their device scopes");
  app->add_option("file", opts->file, "Raw table (default: the firmware's, /sys/firmware/acpi/tables/DMAR; needs root)");
  app->add_flag("--json", opts->json, "Print the decoded table as JSON");
  app->add_flag("--ignore-checksum", opts->ignore_checksum, "Decode a table whose checksum is wrong (the kernel does, with a warning)");
  app->footer(
      "Examples:\n  relax-rmrr dmar\n  relax-rmrr dmar --json dmar.dat | jq .rmrr\n"
      "Exit codes: 0 decoded, 2 malformed table, 3 no table, 5 not readable (try as root).");
  return {app, [opts] {
            dmar::DecodeOptions o;
            o.require_valid_checksum = !opts->ignore_checksum;
            auto t = dmar::decode_file(opts->file, o);
            if (!t) {
              Error e = t.error();
              if (e.code == ExitCode::missing)
                e.hint = "no DMAR table: this host has no Intel VT-d, or it is disabled in the firmware setup";
              else if (e.code == ExitCode::environment) e.hint = "the firmware tables are readable by root only: run with sudo";
              else if (!opts->ignore_checksum && e.message.find("checksum") != std::string::npos)
                e.hint = "--ignore-checksum decodes it anyway";
              else if (e.code == ExitCode::bad_input && e.hint.empty())
                e.hint =
                    "not a complete DMAR table: copy it again, as root, from /sys/firmware/acpi/tables/DMAR "
                    "(sudo cp); if the firmware's own table is malformed, report it to the vendor";
              return report_error(e);
            }
            if (opts->json) print_json(dmar::to_json(*t));
            else print_report(*t, opts->file);
            return 0;
          }};
}

}  // namespace rr::cli
