// relax-rmrr kallsyms IMAGE [--json]: the symbol table a kernel image carries, as /proc/kallsyms would print it.
#include "analysis/bzimage.h"
#include "analysis/image_kallsyms.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "elf/elf_file.h"

#include <fmt/core.h>

namespace rr::cli {

namespace {

struct KallsymsOptions {
  std::string image;
  bool json = false;
  bool summary = false;
};

int run(const KallsymsOptions& o) {
  auto image = analysis::read_kernel_image(o.image);
  if (!image) {
    Error e = image.error();
    if (e.hint.empty() && e.code == ExitCode::bad_input)
      e.hint =
          "IMAGE is a vmlinuz (any compression the kernel uses), the vmlinux ELF it decompresses to, or Debian "
          "7.x's /usr/lib/modules/<release>/vmlinuz";
    return report_error(e);
  }
  auto elf = elf::ElfFile::from_bytes(std::move(image->elf), o.image);
  if (!elf) return report_error(elf.error());
  auto decoded = analysis::decode_image_kallsyms(*elf, o.image);
  if (!decoded) return report_error(decoded.error());

  if (o.json) {
    Json j = analysis::to_json(*decoded, !o.summary);
    j.set("image", o.image);
    j.set("compression", std::string(analysis::compression_name(image->compression)));
    auto written = write_stdout(j.dump(2) + "\n");
    return written ? 0 : report_error(written.error());
  }
  if (o.summary) {
    std::string text = fmt::format("{}: {} symbols, layout {} ({}), addresses {}\n", o.image, decoded->symbols.size(),
                                   analysis::layout_name(decoded->layout), analysis::layout_kernels(decoded->layout),
                                   analysis::address_form_name(decoded->address_form));
    for (const auto& t : decoded->tables) text += fmt::format("  {:<24} {:016x} {:>9} bytes\n", t.name, t.address, t.size);
    for (const auto& c : decoded->checks) text += fmt::format("  checked: {}\n", c);
    auto written = write_stdout(text);
    return written ? 0 : report_error(written.error());
  }
  std::string text;
  text.reserve(decoded->symbols.size() * 40);
  for (const auto& s : decoded->symbols.symbols()) {
    fmt::format_to(std::back_inserter(text), "{:016x} {} ", s.address, s.type);
    text += s.name;
    text += '\n';
  }
  auto written = write_stdout(text);
  return written ? 0 : report_error(written.error());
}

}  // namespace

Command add_kallsyms_command(CLI::App& root) {
  auto opts = std::make_shared<KallsymsOptions>();
  CLI::App* app =
      root.add_subcommand("kallsyms", "Print the symbol table a kernel image carries (its kallsyms tables), as /proc/kallsyms would");
  app->add_option("image", opts->image,
                  "vmlinuz (gzip, xz, lzma, zstd, lz4, bzip2 or none), the vmlinux ELF inside it, or Debian 7.x's "
                  "/usr/lib/modules/<release>/vmlinuz")
      ->required();
  app->add_flag("--json", opts->json, "Print the symbols with where each table was found and which layout was decoded");
  app->add_flag("--summary", opts->summary, "Only the layout, the tables and the checks (with --json: without the symbols)");
  app->footer(
      "Addresses are as linked (no KASLR); the symbols are vmlinux's only (no modules). The tables are found by their "
      "structure and cross-checked (token index, markers, names, sorted addresses, _text at .text) before they are "
      "believed; build, analyze and verify use them when no other symbol source is given.\n"
      "Examples:\n  relax-rmrr kallsyms /boot/vmlinuz-6.1.0-57-amd64 | grep intel_iommu_attach_device\n"
      "  relax-rmrr kallsyms --summary /usr/lib/modules/7.3.4+deb13-amd64/vmlinuz\n"
      "Exit codes: 0 decoded, 2 not a kernel image or tables that do not decode consistently, 3 no kallsyms tables "
      "(CONFIG_KALLSYMS=n) or no such file, 5 not readable (try as root).");
  return {app, [opts] { return run(*opts); }};
}

}  // namespace rr::cli
