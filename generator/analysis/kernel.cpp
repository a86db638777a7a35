#include "analysis/kernel.h"

#include "analysis/image_kallsyms.h"
#include "common/file.h"

#include <sys/utsname.h>

#include <algorithm>
#include <initializer_list>

namespace rr::analysis {

namespace fs = std::filesystem;

namespace {

std::optional<std::string> uname_release() {
  struct utsname u;
  if (uname(&u) != 0) return std::nullopt;
  return std::string(u.release);
}

bool path_exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

fs::path under(const fs::path& root, std::string_view abs) { return root / std::string(abs.substr(1)); }

// Where a distribution installs a kernel file of `release`: /boot/<name>-<release> (Debian up to 6.x, most
// others), or in the modules directory (Debian's split 7.x image packages: /usr/lib/modules/<release>/vmlinuz,
// config, System.map). The first that exists; nullopt when none does.
std::optional<fs::path> installed_kernel_file(const fs::path& root, const std::string& release, std::string_view boot_name,
                                              std::initializer_list<std::string_view> modules_names) {
  if (release.empty()) return std::nullopt;
  std::vector<fs::path> candidates = {under(root, "/boot") / fmt::format("{}-{}", boot_name, release)};
  for (std::string_view dir : {"/usr/lib/modules", "/lib/modules"})
    for (std::string_view name : modules_names) candidates.push_back(under(root, dir) / release / std::string(name));
  for (auto& c : candidates)
    if (path_exists(c)) return c;
  return std::nullopt;
}

std::string headers_package(const std::string& release) {
  return release.empty() ? "linux-headers-$(uname -r)" : "linux-headers-" + release;
}

// Loading one optional input: explicit → Error on failure; default → nullopt plus a missing item.
template <typename T>
Result<std::optional<T>> optional_default(Result<T> r, bool explicit_input, LoadedKernel& k, MissingItem item) {
  if (r) return std::optional<T>(std::move(r).value());
  if (explicit_input) return r.error();
  if (r.error().code != ExitCode::missing) item.what += fmt::format(" ({})", r.error().message);
  k.missing.push_back(std::move(item));
  return std::optional<T>{};
}

// A malformed named input says what the option expects; a more specific hint already given is kept.
constexpr std::string_view kImageHint =
    "--image takes the target's vmlinuz as installed in /boot (package linux-image-<release>) or an uncompressed "
    "vmlinux: this file is damaged or not a kernel image";
template <typename T>
Result<T> with_hint(Result<T> r, std::string_view hint) {
  if (r || r.error().code != ExitCode::bad_input || !r.error().hint.empty()) return r;
  Error e = r.error();
  e.hint = std::string(hint);
  return e;
}

// The kallsyms tables inside the loaded image: the symbols of a kernel that is installed but has never run. The
// reason it failed goes to `why` (appended) for the missing item.
bool symbols_from_image(LoadedKernel& k, std::string& why) {
  if (!k.image) return false;
  auto decoded = decode_image_kallsyms(*k.image, k.image_path);
  if (decoded) {
    k.symbols = std::move(decoded->symbols);
    return true;
  }
  why += (why.empty() ? "" : "; ") + decoded.error().message;
  return false;
}

Status load_symbols(const AnalyzeInputs& in, LoadedKernel& k) {
  std::string why;
  if (in.kallsyms) {
    RR_ASSIGN(auto t, with_hint(read_kallsyms(*in.kallsyms),
                                "--kallsyms takes a copy of /proc/kallsyms made as root on the target kernel "
                                "(sudo cat /proc/kallsyms > kallsyms.txt)"));
    k.symbols = std::move(t);
  } else if (in.system_map) {
    RR_ASSIGN(auto t, with_hint(read_system_map(*in.system_map),
                                "--system-map takes the target's System.map (the real one is in linux-image-<release>-dbg)"));
    k.symbols = std::move(t);
  } else if (in.vmlinux && k.image->has_symtab()) {
    RR_ASSIGN(auto t, symbols_from_elf(*k.image));
    k.symbols = std::move(t);
  } else if (in.vmlinux) {
    // A vmlinux without .symtab (extracted from a vmlinuz): its own kallsyms tables, or an Error.
    RR_ASSIGN(auto decoded, decode_image_kallsyms(*k.image, k.image_path));
    k.symbols = std::move(decoded.symbols);
  } else if (k.running) {
    fs::path p = under(in.root, "/proc/kallsyms");
    auto t = read_kallsyms(p);
    if (t) k.symbols = std::move(t).value();
    else why = t.error().message;
    if (!k.symbols) symbols_from_image(k, why);
    if (!k.symbols) k.missing.push_back({"kernel symbols (" + why + ")", "run on a kernel with CONFIG_KALLSYMS, or pass --kallsyms", true});
  } else {
    // Another kernel: a real System.map (Debian's is a placeholder), the image's symtab, else the image's own
    // kallsyms tables, which every CONFIG_KALLSYMS kernel has.
    if (auto map = installed_kernel_file(in.root, k.release, "System.map", {"System.map"})) {
      auto t = read_system_map(*map);
      if (t) k.symbols = std::move(t).value();
      else why = t.error().message;
    }
    if (!k.symbols && k.image && k.image->has_symtab()) {
      auto t = symbols_from_elf(*k.image);
      if (t) k.symbols = std::move(t).value();
    }
    if (!k.symbols && !k.image && why.empty()) why = "no kernel image to read them from";
    if (!k.symbols) symbols_from_image(k, why);
    if (!k.symbols)
      k.missing.push_back({"kernel symbols" + (why.empty() ? std::string() : " (" + why + ")"),
                           fmt::format("pass --image with the target's vmlinuz (package linux-image-{}), or --kallsyms "
                                       "with a copy of /proc/kallsyms taken on the target kernel (as root)",
                                       k.release.empty() ? "<release>" : k.release),
                           true});
  }
  if (k.symbols && k.symbols->source() == SymbolSource::kallsyms && !k.symbols->addresses_known())
    k.notes.push_back("kallsyms addresses are hidden (not root): sympos follows the file order, which is address order");
  return ok_status();
}

Status load_image(const AnalyzeInputs& in, LoadedKernel& k) {
  std::optional<fs::path> path = in.vmlinux ? in.vmlinux : in.image;
  bool explicit_input = path.has_value();
  if (!path) path = installed_kernel_file(in.root, k.release, "vmlinuz", {"vmlinuz", "vmlinuz.unsigned"});
  if (!path) {
    k.missing.push_back({"kernel image (vmlinuz)",
                         fmt::format("install linux-image-{} (or apt-get download it and extract boot/vmlinuz-*), "
                                     "then pass --image",
                                     k.release.empty() ? "<release>" : k.release),
                         false});
    return ok_status();
  }
  auto img = read_kernel_image(*path, in.decompress);
  if (!img) {
    if (explicit_input) return with_hint(std::move(img), kImageHint).error();
    Error e = img.error();
    k.missing.push_back({"kernel image (" + e.message + ")",
                         e.code == ExitCode::environment ? "run as root: the image is readable by root only" : "pass --image", false});
    return ok_status();
  }
  auto elf = elf::ElfFile::from_bytes(std::move(img->elf), path->string());
  if (elf)
    if (auto st = check_kernel_elf(*elf, path->string()); !st) elf = st.error();
  if (!elf) {
    if (explicit_input) return with_hint(std::move(elf), kImageHint).error();
    k.missing.push_back({"kernel image (" + elf.error().message + ")", "pass --image", false});
    return ok_status();
  }
  k.image = std::move(elf).value();
  k.image_path = path->string();
  k.compression = img->compression;
  k.setup = img->setup;
  return ok_status();
}

Status load_btf(const AnalyzeInputs& in, LoadedKernel& k) {
  if (in.btf) {
    RR_ASSIGN(auto b, Btf::open(*in.btf));
    k.btf = std::move(b);
    return ok_status();
  }
  if (k.running) {
    fs::path p = under(in.root, "/sys/kernel/btf/vmlinux");
    if (path_exists(p)) {
      auto b = Btf::open(p);
      if (b) {
        k.btf = std::move(b).value();
        return ok_status();
      }
      k.notes.push_back(b.error().message);
    }
  }
  if (k.image) {
    auto b = Btf::from_elf(*k.image);
    if (b) {
      k.btf = std::move(b).value();
      return ok_status();
    }
    k.missing.push_back({"BTF type information (" + b.error().message + ")",
                         "a kernel built with CONFIG_DEBUG_INFO_BTF=y has it; else pass --btf with the target's "
                         "/sys/kernel/btf/vmlinux",
                         true});
    return ok_status();
  }
  k.missing.push_back({"BTF type information",
                       k.running ? "this kernel has no /sys/kernel/btf/vmlinux: pass --image with its vmlinuz, or --btf"
                                 : "pass --image with the target's vmlinuz (its .BTF section is used) or --btf with "
                                   "the target's /sys/kernel/btf/vmlinux",
                       true});
  return ok_status();
}

Status load_config(const AnalyzeInputs& in, LoadedKernel& k) {
  if (in.config) {
    RR_ASSIGN(auto c, read_kconfig(*in.config));
    k.config = std::move(c);
    return ok_status();
  }
  std::vector<fs::path> candidates;
  if (auto installed = installed_kernel_file(in.root, k.release, "config", {"config"})) candidates.push_back(*installed);
  if (k.kbuild) candidates.push_back(k.kbuild->dir / ".config");
  if (k.running) candidates.push_back(under(in.root, "/proc/config.gz"));
  for (const auto& p : candidates) {
    if (!path_exists(p)) continue;
    auto c = read_kconfig(p);
    if (c) {
      k.config = std::move(c).value();
      return ok_status();
    }
    k.notes.push_back(c.error().message);
  }
  k.missing.push_back({"kernel configuration",
                       fmt::format("install {} (it has .config) or pass --config /boot/config-<release>", headers_package(k.release)),
                       false});
  return ok_status();
}

// `symvers`: false reads no Module.symvers (tens of thousands of lines), only notes whether it is there.
Status load_kbuild(const AnalyzeInputs& in, LoadedKernel& k, bool symvers = true) {
  fs::path dir;
  if (in.kbuild) dir = *in.kbuild;
  else if (!k.release.empty()) dir = default_kbuild_dir(k.release, in.root);
  if (dir.empty()) {
    k.missing.push_back({"kernel headers (kbuild tree)", "pass --kernel-release or --kbuild DIR", true, true});
    return ok_status();
  }
  auto t = inspect_kbuild(dir);
  RR_ASSIGN(auto tree, optional_default(std::move(t), in.kbuild.has_value(), k,
                                        {"kernel headers (kbuild tree " + dir.string() + ")",
                                         fmt::format("apt-get install {}", headers_package(k.release)), true, true}));
  k.kbuild = std::move(tree);
  if (k.kbuild) {
    if (!k.kbuild->has_symvers) {
      k.missing.push_back({"Module.symvers in " + dir.string(), "reinstall " + headers_package(k.release), false, true});
    } else if (symvers) {
      auto s = read_module_symvers(k.kbuild->dir / "Module.symvers");
      if (s) k.symvers = std::move(s).value();
      else k.notes.push_back(s.error().message);
    }
    if (k.kbuild->release && !k.release.empty() && *k.kbuild->release != k.release)
      k.notes.push_back(fmt::format("the kbuild tree {} is for {}, not {}", dir.string(), *k.kbuild->release, k.release));
  }
  return ok_status();
}

void load_traceable(const AnalyzeInputs& in, LoadedKernel& k) {
  if (!k.running) return;
  for (std::string_view p : {"/sys/kernel/tracing/available_filter_functions", "/sys/kernel/debug/tracing/available_filter_functions"}) {
    fs::path path = under(in.root, p);
    auto text = read_file_text(path, size_t{256} << 20);
    if (!text) continue;
    k.traceable = parse_filter_functions(*text);
    k.traceable_from = path.string();
    return;
  }
  k.missing.push_back({"ftrace's available_filter_functions (to confirm the targets can be patched)",
                       "run as root with tracefs mounted: mount -t tracefs nodev /sys/kernel/tracing", false});
}

std::string release_from_version_string(std::string_view s) {
  auto w = split_ws(s);
  return w.empty() ? std::string() : w[0];
}

}  // namespace

std::string_view era_name(Era era) {
  switch (era) {
    case Era::unknown: return "unknown";
    case Era::attach_check: return "attach-check";
    case Era::require_direct: return "require-direct";
  }
  return "?";
}

std::unordered_set<std::string> parse_filter_functions(std::string_view text) {
  std::unordered_set<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    size_t sp = line.find_first_of(" \t");
    std::string_view name = line.substr(0, sp);
    if (name.empty()) continue;
    if (sp != std::string_view::npos && line.find('[', sp) != std::string_view::npos) continue;  // a module's
    out.emplace(name);
  }
  return out;
}

std::optional<int64_t> kaslr_offset(const SymbolTable& symbols, const elf::ElfFile& image) {
  if (!symbols.addresses_known() || symbols.source() == SymbolSource::elf) return std::nullopt;
  const Symbol* text = symbols.first("_text");
  if (!text || !text->in_vmlinux() || text->address == 0) return std::nullopt;
  std::optional<uint64_t> link;
  if (image.has_symtab()) {
    if (auto st = symbols_from_elf(image))
      if (const Symbol* s = st->first("_text")) link = s->address;
  }
  if (!link)
    if (const elf::ElfSection* s = image.section(".text")) link = s->address;
  if (!link) return std::nullopt;
  return static_cast<int64_t>(text->address - *link);
}

Era decide_era(const SymbolTable* symbols, const BtfFacts* btf, std::string& reason) {
  if (btf && btf->require_direct) {
    reason = "BTF: struct dev_iommu has require_direct, so the IOMMU core enforces RMRR direct mappings";
    return Era::require_direct;
  }
  bool attach_symbol = false, attach_btf = false;
  if (symbols)
    for (const Symbol* s : symbols->find_vmlinux(kAttachFunction))
      if (s->is_function()) attach_symbol = true;
  if (btf)
    for (const auto& [name, fn] : btf->functions)
      if (name == kAttachFunction && fn) attach_btf = true;
  if ((attach_symbol || attach_btf) && btf) {
    reason = fmt::format(
        "{} is a function of vmlinux ({}) and struct dev_iommu {}: the intel driver refuses "
        "RMRR devices when they attach",
        kAttachFunction, attach_symbol ? "symbol" : "BTF", btf->has_dev_iommu ? "has no require_direct" : "does not exist (older kernel)");
    return Era::attach_check;
  }
  if (attach_symbol) {
    reason = fmt::format(
        "{} exists, but without BTF the attach check (up to 6.5) cannot be told from the core's "
        "require_direct (6.6 on)",
        kAttachFunction);
    return Era::unknown;
  }
  if (!symbols && !btf) {
    reason = "neither symbols nor BTF are available";
    return Era::unknown;
  }
  reason = fmt::format("{} is not a function of this kernel (CONFIG_INTEL_IOMMU off?)", kAttachFunction);
  return Era::unknown;
}

namespace {

// The target and its release as the inputs name them, before any image is read.
LoadedKernel start_loading(const AnalyzeInputs& in) {
  LoadedKernel k;
  std::optional<std::string> here = in.running_release ? in.running_release : uname_release();
  bool names_other = in.kallsyms || in.system_map || in.vmlinux || in.image || (in.release && in.release != here);
  k.running = !names_other;
  if (in.release) {
    k.release = *in.release;
    k.release_from = "--kernel-release";
  } else if (k.running && here) {
    k.release = *here;
    k.release_from = "uname";
  }
  return k;
}

}  // namespace

Result<std::optional<LoadedKernel>> load_build_inputs(const AnalyzeInputs& in) {
  LoadedKernel k = start_loading(in);
  if (k.release.empty()) {
    // load_kernel() takes it from the image, the setup header's version string first: that string is read here
    // without decompressing anything. A plain vmlinux ELF, or no version string: only load_kernel() can tell.
    if (in.vmlinux || !in.image) return std::optional<LoadedKernel>();
    auto bytes = read_file_bytes(*in.image);
    if (!bytes) return std::optional<LoadedKernel>();
    auto setup = parse_setup_header(ByteView(bytes->data(), bytes->size()));
    if (!setup) return std::optional<LoadedKernel>();
    k.release = release_from_version_string(setup->kernel_version);
    if (k.release.empty()) return std::optional<LoadedKernel>();
    k.release_from = "image";
  }
  RR_CHECK(load_kbuild(in, k, false));  // check_build_prerequisites() asks only whether Module.symvers is there
  RR_CHECK(load_config(in, k));
  return std::optional<LoadedKernel>(std::move(k));
}

Result<LoadedKernel> load_kernel(const AnalyzeInputs& in) {
  LoadedKernel k = start_loading(in);

  // The image first: it can tell the release.
  RR_CHECK(load_image(in, k));
  if (k.image) {
    std::string from_image;
    if (k.setup && !k.setup->kernel_version.empty()) from_image = release_from_version_string(k.setup->kernel_version);
    if (from_image.empty())
      if (auto b = find_banner(k.image->bytes())) from_image = b->release;
    if (k.release.empty() && !from_image.empty()) {
      k.release = from_image;
      k.release_from = "image";
    } else if (!from_image.empty() && from_image != k.release) {
      k.inconsistent = true;
      k.missing.push_back({fmt::format("an image of release {} (the image {} is release {})", k.release, k.image_path, from_image),
                           "pass the vmlinuz of the target kernel with --image, or its release with --kernel-release", true});
    }
  }
  if (k.release.empty()) {
    if (in.kbuild)
      if (auto t = inspect_kbuild(*in.kbuild); t && t->release) {
        k.release = *t->release;
        k.release_from = "kbuild";
      }
  }
  if (k.release.empty()) k.missing.push_back({"the kernel release", "pass --kernel-release R (uname -r on the target)", false});

  RR_CHECK(load_symbols(in, k));
  RR_CHECK(load_btf(in, k));
  RR_CHECK(load_kbuild(in, k));
  RR_CHECK(load_config(in, k));
  load_traceable(in, k);
  return k;
}

Status check_build_prerequisites(const LoadedKernel& k) {
  std::string release = k.release.empty() ? std::string("the target kernel") : k.release;
  if (k.config) {
    if (!k.config->enabled("LIVEPATCH")) {
      Error e = make_error(ExitCode::missing, "{} is built without CONFIG_LIVEPATCH ({}): it cannot load a livepatch", release,
                           k.config->origin());
      e.hint = "use a kernel built with CONFIG_LIVEPATCH=y, or patch and rebuild this one (relax-rmrr patch)";
      return e;
    }
    for (std::string_view lto : {"LTO_CLANG", "LTO_CLANG_THIN", "LTO_CLANG_FULL"})
      if (k.config->enabled(lto)) {
        Error e = make_error(ExitCode::refused,
                             "{} is built with Clang LTO (CONFIG_{}=y in {}): its code is optimised across files at "
                             "link time, so compiling intel-iommu alone cannot reproduce the functions a livepatch "
                             "replaces",
                             release, lto, k.config->origin());
        e.hint = "use a kernel built without LTO, or patch and rebuild this one (relax-rmrr patch)";
        return e;
      }
  }
  if (k.kbuild) {
    std::string headers = k.release.empty() ? std::string("linux-headers-<release>") : "linux-headers-" + k.release;
    if (k.kbuild->release && !k.release.empty() && *k.kbuild->release != k.release) {
      Error e = make_error(ExitCode::missing, "the kernel headers {} are for {}, not for the target {}", k.kbuild->dir.string(),
                           *k.kbuild->release, k.release);
      e.hint = fmt::format("install {} (apt-get install {}) or pass --kbuild with the build tree of {}", headers, headers, k.release);
      return e;
    }
    if (!k.kbuild->has_symvers) {
      Error e = make_error(ExitCode::missing,
                           "the kernel headers {} have no Module.symvers: the kernel's exported symbols and their "
                           "versions are unknown, so the module could not link against it",
                           k.kbuild->dir.string());
      e.hint = fmt::format(
          "reinstall the headers (apt-get install --reinstall {}) or pass --kbuild with a complete "
          "build tree",
          headers);
      return e;
    }
  }
  return ok_status();
}

}  // namespace rr::analysis
