#include "analysis/kernel.h"

#include "analysis/image_kallsyms.h"
#include "common/file.h"

#include <sys/utsname.h>

#include <algorithm>
#include <initializer_list>

namespace rr::analysis {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kAttach = "intel_iommu_attach_device";
constexpr std::string_view kResv = "intel_iommu_get_resv_regions";

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
    for (const Symbol* s : symbols->find_vmlinux(kAttach))
      if (s->is_function()) attach_symbol = true;
  if (btf)
    for (const auto& [name, fn] : btf->functions)
      if (name == kAttach && fn) attach_btf = true;
  if ((attach_symbol || attach_btf) && btf) {
    reason = fmt::format(
        "{} is a function of vmlinux ({}) and struct dev_iommu {}: the intel driver refuses "
        "RMRR devices when they attach",
        kAttach, attach_symbol ? "symbol" : "BTF", btf->has_dev_iommu ? "has no require_direct" : "does not exist (older kernel)");
    return Era::attach_check;
  }
  if (attach_symbol) {
    reason = fmt::format(
        "{} exists, but without BTF the attach check (up to 6.5) cannot be told from the core's "
        "require_direct (6.6 on)",
        kAttach);
    return Era::unknown;
  }
  if (!symbols && !btf) {
    reason = "neither symbols nor BTF are available";
    return Era::unknown;
  }
  reason = fmt::format("{} is not a function of this kernel (CONFIG_INTEL_IOMMU off?)", kAttach);
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

KernelFacts summarize(const LoadedKernel& k, const std::string& local_cc) {
  KernelFacts f;
  f.release = k.release;
  f.release_from = k.release_from;
  f.running = k.running;
  f.missing = k.missing;
  f.notes = k.notes;

  const SymbolTable* syms = k.symbols ? &*k.symbols : nullptr;
  if (syms) {
    f.symbols_from = syms->origin();
    f.symbols_kind = std::string(source_name(syms->source()));
    f.symbol_count = syms->size();
    f.addresses_known = syms->addresses_known();
  }
  if (k.image) {
    f.image_path = k.image_path;
    f.compression = std::string(compression_name(k.compression));
    if (k.setup) f.image_version = k.setup->kernel_version;
    f.image_has_symtab = k.image->has_symtab();
    if (syms) f.kaslr_offset = kaslr_offset(*syms, *k.image);
  }

  std::vector<std::string> funcs{std::string(kAttach), std::string(kResv), "device_rmrr_is_relaxable", "device_is_rmrr_locked",
                                 "device_has_rmrr"};
  if (k.btf) f.btf = collect_btf_facts(*k.btf, funcs);

  if (k.config) {
    f.config_from = k.config->origin();
    for (std::string_view name : {"LIVEPATCH", "INTEL_IOMMU", "DEBUG_INFO_BTF", "MODULE_SIG", "MODULE_SIG_FORCE", "X86_KERNEL_IBT",
                                  "DYNAMIC_FTRACE", "KALLSYMS_ALL"})
      f.config.emplace_back("CONFIG_" + std::string(name), k.config->value(name).value_or("(absent)"));
  }
  if (k.kbuild) {
    f.kbuild_dir = k.kbuild->dir.string();
    f.kbuild_present = true;
    f.symvers_present = k.symvers.has_value();
  }

  // Compiler: the image's banner, else the kbuild tree's compile.h, else the config's CONFIG_CC_VERSION_TEXT.
  std::optional<std::string> cc_text;
  if (k.image)
    if (auto b = find_banner(k.image->bytes()); b && !b->compiler.empty()) {
      cc_text = b->compiler;
      f.kernel_compiler_from = "image banner";
    }
  if (!cc_text && k.kbuild && k.kbuild->compiler) {
    cc_text = k.kbuild->compiler;
    f.kernel_compiler_from = "kbuild include/generated/compile.h";
  }
  if (!cc_text && k.config)
    if (auto s = k.config->string("CC_VERSION_TEXT")) {
      cc_text = *s;
      f.kernel_compiler_from = "CONFIG_CC_VERSION_TEXT";
    }
  if (cc_text) f.kernel_compiler = parse_compiler_text(*cc_text);
  if (f.kernel_compiler && f.kernel_compiler->command != local_cc) f.local_compiler = local_compiler(f.kernel_compiler->command);
  if (!f.local_compiler || compare_compilers(f.kernel_compiler, f.local_compiler) == CompilerMatch::different) {
    auto plain = local_compiler(local_cc);
    if (plain && (!f.local_compiler || compare_compilers(f.kernel_compiler, plain) != CompilerMatch::different)) f.local_compiler = plain;
  }
  f.compiler_match = compare_compilers(f.kernel_compiler, f.local_compiler);
  if (!f.kernel_compiler) {
    f.missing.push_back({"the compiler that built the kernel", "pass --image (its banner names it) or --kbuild", false});
  } else if (f.compiler_match == CompilerMatch::different || f.compiler_match == CompilerMatch::unknown) {
    std::string cmd = f.kernel_compiler->command;
    if (cmd == f.kernel_compiler->family)  // "gcc (GCC) 15.3.0": name the versioned package
      cmd += "-" + f.kernel_compiler->version.substr(0, f.kernel_compiler->version.find('.'));
    f.missing.push_back({fmt::format("the kernel's compiler ({}) on this machine", f.kernel_compiler->text),
                         fmt::format("install {} (Debian: apt-get install {}); a livepatch built by another compiler "
                                     "may not match the kernel's code",
                                     cmd, cmd),
                         true});
  }

  f.era = decide_era(syms, f.btf ? &*f.btf : nullptr, f.era_reason);

  // Patch targets.
  struct Want {
    std::string_view name;
    bool required;
    std::string_view role;
  };
  std::vector<Want> wants;
  bool core = f.era == Era::require_direct;
  wants.push_back({kAttach, !core,
                   core ? "the attach check is gone from the driver (the core enforces require_direct): no change"
                        : "refuses RMRR devices (inlines device_is_rmrr_locked/device_rmrr_is_relaxable)"});
  wants.push_back({kResv, true, "reports RMRR regions: must report them as IOMMU_RESV_DIRECT_RELAXABLE"});
  wants.push_back({"device_rmrr_is_relaxable", false, "the relax decision; a smaller target when not inlined"});
  wants.push_back({"device_is_rmrr_locked", false, "the attach veto; a smaller target when not inlined"});
  wants.push_back({"device_has_rmrr", false, "RMRR lookup; a smaller target when not inlined"});
  for (const auto& w : wants) {
    PatchTarget t;
    t.name = std::string(w.name);
    t.role = std::string(w.role);
    t.required = w.required;
    if (syms) {
      auto same = syms->find_vmlinux(w.name);
      t.count = static_cast<unsigned>(same.size());
      if (!same.empty()) {
        const Symbol* s = same.front();
        for (const Symbol* c : same)
          if (c->is_function()) {
            s = c;
            break;
          }
        t.present = true;
        t.function = s->is_function();
        t.type = s->type;
        t.address = s->address;
        t.sympos = syms->sympos(*s);
      }
      for (const Symbol* v : syms->variants(w.name))
        if (v->in_vmlinux()) t.variants.push_back(v->name);
    }
    if (k.traceable) t.traceable = k.traceable->count(t.name) != 0;
    if (f.btf)
      for (const auto& [name, fn] : f.btf->functions)
        if (name == t.name) t.in_btf = fn.has_value();
    t.patchable = t.present && t.function && t.traceable.value_or(true);
    if (!syms) t.note = "no symbols to look in";
    else if (!t.present)
      t.note = t.variants.empty() ? "not a symbol: inlined into its callers (or absent)"
                                  : "only gcc's clones exist: the original is inlined or split";
    else if (!t.function) t.note = fmt::format("'{}' symbol is not a function", t.type);
    else if (t.traceable == false) t.note = "not in available_filter_functions: ftrace cannot redirect it (notrace?)";
    else if (t.count > 1) t.note = fmt::format("{} functions share the name: sympos {} picks this one", t.count, *t.sympos);
    f.targets.push_back(std::move(t));
  }

  for (std::string_view name : {"dmar_rmrr_units", "dmar_global_lock", "device_to_iommu", "iommu_alloc_resv_region"}) {
    ReferencedSymbol r;
    r.name = std::string(name);
    if (syms) {
      auto same = syms->find_vmlinux(name);
      if (!same.empty()) {
        r.present = true;
        r.type = same.front()->type;
        r.sympos = syms->sympos(*same.front());
      }
    }
    if (k.symvers) r.exported = k.symvers->exported(name);
    f.references.push_back(std::move(r));
  }

  bool consistent = !k.inconsistent;
  // Symbols and BTF from different kernels would decide the era from the wrong one: both driver callbacks are
  // real functions, so a BTF of the same kernel has a FUNC for each of them.
  if (syms && f.btf) {
    std::vector<std::string> lacking;
    for (const auto& t : f.targets)
      if ((t.name == kAttach || t.name == kResv) && t.function && t.in_btf == false) lacking.push_back(t.name);
    if (lacking.size() == 2) {
      f.missing.push_back({fmt::format("BTF that matches the symbols: {} has no {} and {}, which {} has", f.btf->origin, lacking[0],
                                       lacking[1], f.symbols_from),
                           "give --btf (or --image) and --kallsyms of the same kernel", true});
      f.era = Era::unknown;
      f.era_reason = "the symbols and the BTF do not come from the same kernel";
      consistent = false;
    }
  }

  bool livepatch_ok = !k.config || k.config->enabled("LIVEPATCH");
  if (k.config && !k.config->enabled("INTEL_IOMMU"))
    f.missing.push_back(
        {"the Intel IOMMU driver (CONFIG_INTEL_IOMMU=y)", "this kernel has no Intel VT-d driver: there is no RMRR check to relax", true});
  if (!livepatch_ok)
    f.missing.push_back({"CONFIG_LIVEPATCH in this kernel",
                         "this kernel cannot load livepatches: use a kernel built "
                         "with CONFIG_LIVEPATCH=y",
                         true});
  if (f.era == Era::unknown && syms && f.btf) f.notes.push_back("no relax-rmrr livepatch applies to this kernel: " + f.era_reason);
  // What `build` refuses before compiling (headers of another release, no Module.symvers, Clang LTO) means
  // "not ready" here too, so that analyze and build agree. CONFIG_LIVEPATCH is listed above already.
  if (livepatch_ok)
    if (auto pre = check_build_prerequisites(k); !pre) f.missing.push_back({pre.error().message, pre.error().hint, true});
  bool targets_ok = std::all_of(f.targets.begin(), f.targets.end(), [](const PatchTarget& t) { return !t.required || t.patchable; });
  f.feasible = f.era != Era::unknown && targets_ok && livepatch_ok && consistent;
  f.ready = f.feasible && std::none_of(f.missing.begin(), f.missing.end(), [](const MissingItem& m) { return m.blocking; });
  return f;
}

Result<KernelFacts> analyze(const AnalyzeInputs& inputs) {
  RR_ASSIGN(LoadedKernel k, load_kernel(inputs));
  return summarize(k, inputs.local_cc);
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

namespace {
Json opt_json(const std::optional<uint64_t>& v) { return v ? Json(*v) : Json(nullptr); }
Json opt_json(const std::optional<bool>& v) { return v ? Json(*v) : Json(nullptr); }
Json opt_json(const std::optional<unsigned>& v) { return v ? Json(*v) : Json(nullptr); }
Json str_or_null(const std::string& s) { return s.empty() ? Json(nullptr) : Json(s); }
Json compiler_json(const std::optional<CompilerInfo>& c) {
  if (!c) return nullptr;
  Json j = Json::object();
  j.set("text", c->text);
  j.set("family", c->family);
  j.set("version", c->version);
  j.set("command", c->command);
  return j;
}
}  // namespace

Json to_json(const KernelFacts& f) {
  Json j = Json::object();
  j.set("release", str_or_null(f.release));
  j.set("release_from", str_or_null(f.release_from));
  j.set("running", f.running);
  j.set("era", std::string(era_name(f.era)));
  j.set("era_reason", f.era_reason);
  j.set("feasible", f.feasible);
  j.set("ready", f.ready);

  Json sy = Json::object();
  sy.set("from", str_or_null(f.symbols_from));
  sy.set("kind", str_or_null(f.symbols_kind));
  sy.set("count", f.symbol_count);
  sy.set("addresses_known", f.addresses_known);
  j.set("symbols", std::move(sy));

  Json im = Json::object();
  im.set("path", str_or_null(f.image_path));
  im.set("compression", str_or_null(f.compression));
  im.set("version", str_or_null(f.image_version));
  im.set("has_symtab", f.image_has_symtab);
  im.set("kaslr_offset", f.kaslr_offset ? Json(static_cast<long long>(*f.kaslr_offset)) : Json(nullptr));
  j.set("image", std::move(im));

  Json targets = Json::array();
  for (const auto& t : f.targets) {
    Json o = Json::object();
    o.set("name", t.name);
    o.set("required", t.required);
    o.set("present", t.present);
    o.set("function", t.function);
    o.set("type", t.type ? Json(std::string(1, t.type)) : Json(nullptr));
    o.set("address", t.present ? Json(fmt::format("{:#x}", t.address)) : Json(nullptr));
    o.set("count", t.count);
    o.set("sympos", opt_json(t.sympos));
    o.set("variants", Json::strings(t.variants));
    o.set("traceable", opt_json(t.traceable));
    o.set("in_btf", opt_json(t.in_btf));
    o.set("patchable", t.patchable);
    o.set("role", t.role);
    o.set("note", str_or_null(t.note));
    targets.push(std::move(o));
  }
  j.set("targets", std::move(targets));

  Json refs = Json::array();
  for (const auto& r : f.references) {
    Json o = Json::object();
    o.set("name", r.name);
    o.set("present", r.present);
    o.set("type", r.type ? Json(std::string(1, r.type)) : Json(nullptr));
    o.set("sympos", opt_json(r.sympos));
    o.set("exported", opt_json(r.exported));
    o.set("needs_klp_relocation", r.exported ? Json(r.present && !*r.exported) : Json(nullptr));
    refs.push(std::move(o));
  }
  j.set("references", std::move(refs));

  if (f.btf) {
    Json b = Json::object();
    b.set("from", f.btf->origin);
    b.set("types", f.btf->type_count);
    b.set("dev_iommu", f.btf->has_dev_iommu);
    b.set("dev_iommu_size", opt_json(f.btf->dev_iommu_size));
    if (f.btf->require_direct) {
      Json r = Json::object();
      r.set("bit_offset", f.btf->require_direct->bit_offset);
      r.set("bitfield_size", f.btf->require_direct->bitfield_size);
      b.set("require_direct", std::move(r));
    } else {
      b.set("require_direct", nullptr);
    }
    Json sizes = Json::object();
    for (const auto& [name, size] : f.btf->entry_sizes) sizes.set(name, opt_json(size));
    b.set("entry_sizes", std::move(sizes));
    Json fns = Json::object();
    for (const auto& [name, fn] : f.btf->functions) {
      if (!fn) {
        fns.set(name, nullptr);
        continue;
      }
      Json o = Json::object();
      o.set("global", fn->global);
      o.set("params", Json::strings(fn->params));
      fns.set(name, std::move(o));
    }
    b.set("functions", std::move(fns));
    j.set("btf", std::move(b));
  } else {
    j.set("btf", nullptr);
  }

  Json cfg = Json::object();
  cfg.set("from", str_or_null(f.config_from));
  for (const auto& [k, v] : f.config) cfg.set(k, v);
  j.set("config", std::move(cfg));

  Json kb = Json::object();
  kb.set("dir", str_or_null(f.kbuild_dir));
  kb.set("present", f.kbuild_present);
  kb.set("module_symvers", f.symvers_present);
  j.set("kbuild", std::move(kb));

  Json cc = Json::object();
  cc.set("kernel", compiler_json(f.kernel_compiler));
  cc.set("kernel_from", str_or_null(f.kernel_compiler_from));
  cc.set("local", compiler_json(f.local_compiler));
  cc.set("match", std::string(match_name(f.compiler_match)));
  j.set("compiler", std::move(cc));

  j.set("missing", Json::array_of(f.missing, [](const MissingItem& m) {
          return Json(Json::Object{{"what", m.what}, {"how", m.how}, {"blocking", m.blocking}});
        }));
  j.set("notes", Json::strings(f.notes));
  return j;
}

}  // namespace rr::analysis
