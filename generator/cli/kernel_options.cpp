#include "cli/kernel_options.h"
#include "cli/validators.h"

namespace rr::cli {

void add_kernel_options(CLI::App* app, KernelOptions& o) {
  app->add_option("--kernel-release", o.release, "Target release (default: the running kernel, or the image's)")
      ->check(kernel_release_check());
  auto* ks = app->add_option("--kallsyms", o.kallsyms, "A /proc/kallsyms dump of the target (read as root)");
  auto* sm = app->add_option("--system-map", o.system_map, "The target's System.map");
  auto* vm = app->add_option("--vmlinux", o.vmlinux, "An unstripped vmlinux ELF (symbols, BTF, banner)");
  ks->excludes(sm)->excludes(vm);
  sm->excludes(vm);
  app->add_option("--image", o.image,
                  "The target's vmlinuz (bzImage) or vmlinux (default: /boot/vmlinuz-R, /usr/lib/modules/R/vmlinuz); with no "
                  "symbol option and a kernel that is not running, its own kallsyms tables give the symbols");
  app->add_option("--btf", o.btf, "Raw BTF (/sys/kernel/btf/vmlinux of the target) or an ELF with .BTF");
  app->add_option("--config", o.config, "Kernel config (default: /boot/config-R, <kbuild>/.config, /proc/config.gz)");
  app->add_option("--kbuild", o.kbuild, "Kernel build tree (default: /lib/modules/R/build)");
}

analysis::AnalyzeInputs to_analyze_inputs(const KernelOptions& o) {
  auto opt = [](const std::string& s) -> std::optional<std::filesystem::path> {
    if (s.empty()) return std::nullopt;
    return std::filesystem::path(s);
  };
  analysis::AnalyzeInputs in;
  if (!o.release.empty()) in.release = o.release;
  in.kallsyms = opt(o.kallsyms);
  in.system_map = opt(o.system_map);
  in.vmlinux = opt(o.vmlinux);
  in.image = opt(o.image);
  in.btf = opt(o.btf);
  in.config = opt(o.config);
  in.kbuild = opt(o.kbuild);
  return in;
}

CLI::Option* add_source_option(CLI::App* app, std::string& source) {
  return app->add_option("--source", source,
                         "Kernel source: a linux-source tarball, a kernel tree, or a directory with drivers/iommu "
                         "(default: the distribution's tarball in /usr/src)");
}

}  // namespace rr::cli
