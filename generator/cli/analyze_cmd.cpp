// relax-rmrr analyze: what a livepatch must replace in a kernel (the running one by default).
#include "analysis/kernel.h"
#include "analysis/kernel_facts.h"
#include "cli/commands.h"
#include "cli/kernel_options.h"
#include "cli/output.h"

#include <fmt/format.h>

namespace rr::cli {

namespace {

struct AnalyzeOptions {
  KernelOptions kernel;
  bool json = false;
};

std::string yes_no(const std::optional<bool>& v) { return v ? (*v ? "yes" : "no") : "unknown"; }

void print_report(const analysis::KernelFacts& f) {
  fmt::print("Kernel {}{}\n", f.release.empty() ? "(release unknown)" : f.release,
             f.running                ? " (running)"
             : f.release_from.empty() ? ""
                                      : fmt::format(" (from {})", f.release_from));
  fmt::print("  era: {}{}\n", analysis::era_name(f.era), f.era_reason.empty() ? "" : "\n       " + f.era_reason);

  fmt::print("  symbols: ");
  if (f.symbols_from.empty()) fmt::print("none\n");
  else
    fmt::print("{} from {} ({} symbols{})\n", f.symbols_kind, f.symbols_from, f.symbol_count,
               f.addresses_known ? "" : ", addresses hidden");
  if (!f.image_path.empty()) {
    fmt::print("  image: {} (compression {}, {})\n", f.image_path, f.compression, f.image_has_symtab ? "has a symbol table" : "stripped");
    if (f.kaslr_offset) fmt::print("  KASLR offset of the symbols' boot: {:#x}\n", static_cast<uint64_t>(*f.kaslr_offset));
  }

  fmt::print("  patch targets:\n");
  for (const auto& t : f.targets) {
    std::string where =
        t.present ? fmt::format("{} {:#x} sympos {}", t.type, t.address, t.sympos ? fmt::format("{}", *t.sympos) : "?") : "absent";
    fmt::print("    {:<30} {:<9} {:<8} {}\n", t.name, t.required ? "required" : "optional", t.patchable ? "PATCHABLE" : "no", where);
    if (!t.variants.empty()) fmt::print("      pieces: {}\n", fmt::join(t.variants, ", "));
    if (t.traceable) fmt::print("      in available_filter_functions: {}\n", yes_no(t.traceable));
    if (t.in_btf) fmt::print("      BTF function: {}\n", yes_no(t.in_btf));
    if (!t.note.empty()) fmt::print("      {}\n", t.note);
  }
  fmt::print("  symbols the patch refers to:\n");
  for (const auto& r : f.references) {
    std::string how = !r.present    ? "absent"
                      : !r.exported ? "export status unknown (no Module.symvers)"
                      : *r.exported ? "exported: plain relocation"
                                    : fmt::format("not exported: klp relocation .klp.sym.vmlinux.{},{}", r.name, r.sympos.value_or(0));
    fmt::print("    {:<30} {} {}\n", r.name, r.present ? std::string(1, r.type) : "-", how);
  }

  if (f.btf) {
    fmt::print("  BTF: {} ({} types)\n", f.btf->origin, f.btf->type_count);
    if (!f.btf->has_dev_iommu) fmt::print("    struct dev_iommu: absent\n");
    else if (f.btf->require_direct)
      fmt::print("    struct dev_iommu ({} bytes): require_direct at bit {} ({}-bit field)\n", *f.btf->dev_iommu_size,
                 f.btf->require_direct->bit_offset, f.btf->require_direct->bitfield_size);
    else fmt::print("    struct dev_iommu ({} bytes): no require_direct\n", *f.btf->dev_iommu_size);
    std::vector<std::string> sizes;
    for (const auto& [name, size] : f.btf->entry_sizes) sizes.push_back(fmt::format("{} {}", name, size ? fmt::format("{}", *size) : "-"));
    fmt::print("    special-section entry sizes: {}\n", fmt::join(sizes, ", "));
  } else {
    fmt::print("  BTF: none\n");
  }
  if (!f.config_from.empty()) {
    std::vector<std::string> opts;
    for (const auto& [k, v] : f.config) opts.push_back(fmt::format("{}={}", k.substr(7), v));
    fmt::print("  config: {}\n    {}\n", f.config_from, fmt::join(opts, " "));
  }
  fmt::print("  kbuild: {}\n", f.kbuild_present ? f.kbuild_dir + (f.symvers_present ? " (with Module.symvers)" : "") : "none");
  fmt::print("  compiler: kernel {}{}, here {} -> {}\n", f.kernel_compiler ? f.kernel_compiler->text : "unknown",
             f.kernel_compiler_from.empty() ? "" : " (" + f.kernel_compiler_from + ")",
             f.local_compiler ? f.local_compiler->command + " " + f.local_compiler->version : "none",
             analysis::match_name(f.compiler_match));
  for (const auto& n : f.notes) fmt::print("  note: {}\n", n);
  if (!f.missing.empty()) {
    fmt::print("  missing:\n");
    for (const auto& m : f.missing) fmt::print("    {}{}\n      -> {}\n", m.blocking ? "[needed] " : "", m.what, m.how);
  }
  fmt::print("  verdict: {}\n", !f.feasible ? "no livepatch can be planned for this kernel with what is known"
                                : f.ready   ? "a relax-rmrr livepatch can target this kernel, and everything to build it is here"
                                            : "a relax-rmrr livepatch can target this kernel; get the [needed] items above to build it");
}

}  // namespace

Command add_analyze_command(CLI::App& root) {
  auto o = std::make_shared<AnalyzeOptions>();
  CLI::App* app = root.add_subcommand(
      "analyze", "Read a kernel's symbols, image, BTF, config and build tree; report its era and what a livepatch must replace");
  add_kernel_options(app, o->kernel);
  app->add_flag("--json", o->json, "Print the facts as JSON");
  app->footer(
      "Examples:\n  relax-rmrr analyze\n"
      "  relax-rmrr analyze --image /boot/vmlinuz-6.1.0-57-amd64    (installed, not running: symbols from the image)\n"
      "Exit codes: 0 a livepatch can target the kernel, 1 analysed but it cannot (see missing),\n"
      "            2 a named input is malformed, 3 a named input is missing, 5 not readable (try as root).");
  return {app, [o] {
            analysis::AnalyzeInputs in = to_analyze_inputs(o->kernel);
            auto facts = analysis::analyze(in);
            if (!facts) return report_error(facts.error());
            if (o->json) print_json(analysis::to_json(*facts));
            else print_report(*facts);
            return facts->feasible ? 0 : static_cast<int>(ExitCode::failure);
          }};
}

}  // namespace rr::cli
