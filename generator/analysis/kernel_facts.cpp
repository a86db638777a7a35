#include "analysis/kernel_facts.h"

#include <algorithm>

namespace rr::analysis {

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

  std::vector<std::string> funcs{std::string(kAttachFunction), std::string(kResvRegionsFunction), "device_rmrr_is_relaxable",
                                 "device_is_rmrr_locked", "device_has_rmrr"};
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
  wants.push_back({kAttachFunction, !core,
                   core ? "the attach check is gone from the driver (the core enforces require_direct): no change"
                        : "refuses RMRR devices (inlines device_is_rmrr_locked/device_rmrr_is_relaxable)"});
  wants.push_back({kResvRegionsFunction, true, "reports RMRR regions: must report them as IOMMU_RESV_DIRECT_RELAXABLE"});
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
      if ((t.name == kAttachFunction || t.name == kResvRegionsFunction) && t.function && t.in_btf == false) lacking.push_back(t.name);
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
