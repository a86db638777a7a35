#include "verify/verify.h"

#include "verify/kernel_text.h"

#include <fmt/core.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <set>

namespace rr::verify {

namespace {

// The function a relocation points at: a function symbol, or a section symbol of a section whose function
// starts at that addend (gcc refers to static functions through their section).
const obj::Symbol* function_target(const obj::Object& o, const obj::Rela& r) {
  if (r.symbol >= o.symbols.size()) return nullptr;
  const obj::Symbol& s = o.symbols[r.symbol];
  if (s.is_function()) return &s;
  if (!s.is_section() || s.shndx >= o.sections.size()) return nullptr;
  const obj::Section& sec = o.sections[s.shndx];
  if (!sec.is_text()) return nullptr;
  // call/jmp: addend -4 from the section start; a pointer: addend 0.
  int64_t off = r.addend + (obj::rela_is_pc_relative(r.type) ? 4 : 0);
  if (off < 0) return nullptr;
  const obj::Symbol* f = o.symbol_at(s.shndx, static_cast<uint64_t>(off));
  return f && f->is_function() ? f : nullptr;
}

// Kernel (runtime) address of a name as the plan resolves it; nullopt when absent or ambiguous.
std::optional<const analysis::Symbol*> kernel_symbol(const analysis::SymbolTable& table, const klp::KernelSymbols& ks,
                                                     const std::string& name) {
  auto found = table.find_vmlinux(name);
  if (found.empty()) return std::nullopt;
  if (found.size() == 1) return found.front();
  klp::TargetSymbol t = ks.lookup(name);
  if (!t.found || !t.problem.empty() || t.sympos == 0 || t.sympos > found.size()) return std::nullopt;
  return found[t.sympos - 1];
}

constexpr uint64_t kKernelHalf = 0xffff800000000000ull;

}  // namespace

std::vector<std::string> relied_on_functions(const obj::Object& patched, const obj::Object& original,
                                             const std::vector<std::string>& replaced, const klp::KernelSymbols& symbols) {
  std::set<std::string> out, seen;
  std::deque<std::string> work(replaced.begin(), replaced.end());
  std::set<std::string> replaced_set(replaced.begin(), replaced.end());
  while (!work.empty()) {
    std::string name = work.front();
    work.pop_front();
    if (!seen.insert(name).second) continue;
    // The function and its split-off parts (name.cold) in the patched object.
    std::vector<const obj::Symbol*> parts;
    for (const auto& s : patched.symbols)
      if (s.is_function() && s.defined_in_section() && (s.name == name || s.name == name + ".cold")) parts.push_back(&s);
    for (const auto* p : parts) {
      const obj::Section& sec = patched.sections[p->shndx];
      for (const auto& r : sec.relas) {
        if (r.offset < p->value || r.offset >= p->value + p->size) continue;
        const obj::Symbol* f = function_target(patched, r);
        if (!f || f->name == p->name) continue;
        std::string callee = f->name;
        if (callee.ends_with(".cold")) callee.resize(callee.size() - 5);
        if (replaced_set.count(callee) || callee == name) continue;
        const obj::Symbol* in_original = original.symbol(callee);
        if (!in_original || !in_original->is_function() || !in_original->defined_in_section()) continue;  // not this driver's
        if (symbols.lookup(callee).found && symbols.is_function(callee)) out.insert(callee);  // the kernel's copy is used
        else work.push_back(callee);  // carried (inlined in the kernel): what it uses is relied on too
      }
    }
  }
  return {out.begin(), out.end()};
}

bool Report::ok() const {
  for (const auto& f : functions)
    if (!f.comparison.equal()) return false;
  for (const auto& l : layouts)
    if (!l.ok()) return false;
  return true;
}

std::string Report::first_problem() const {
  for (const auto& f : functions) {
    const auto& c = f.comparison;
    if (c.equal()) continue;
    std::string meaning =
        "the source is not the one this kernel was built from (another stable release or a distribution backport), or it was "
        "compiled with another compiler or configuration than the kernel";
    if (c.first_difference)
      return fmt::format(
          "{} ({}) differs from the kernel's at offset {:#x}: {} (compiled {}, kernel {}; {} bytes compiled, {} {}); this means {}", c.name,
          f.role, *c.first_difference, c.difference_note, c.expected_bytes, c.target_bytes, c.object_size, c.target_size,
          c.target_size_exact ? "in the kernel" : "up to the next kernel symbol", meaning);
    return fmt::format("{} ({}): {}; this means {}", c.name, f.role, c.difference_note, meaning);
  }
  for (const auto& l : layouts)
    if (!l.ok())
      return fmt::format(
          "{}; the replacement would read and write that structure at the wrong offsets: the headers or the "
          "source are of another version or configuration than the kernel",
          l.problem);
  return {};
}

Result<Report> verify(const VerifyInputs& in) {
  if (!in.kernel || !in.original || !in.symbols)
    return make_error(ExitCode::failure, "internal: verify needs the kernel, the original object and its symbols");
  const analysis::LoadedKernel& k = *in.kernel;
  if (!k.symbols) return make_error(ExitCode::missing, "verify: the target's symbols are needed (kallsyms, System.map or a vmlinux)");
  if (!k.symbols->addresses_known()) {
    Error e = make_error(ExitCode::missing, "verify: the target's symbol addresses are hidden ({} shows zeros)", k.symbols->origin());
    e.hint = "run as root or pass --kallsyms with a dump taken as root";
    return e;
  }
  Report rep;

  // Where the kernel's bytes come from.
  std::optional<KernelText> text;
  bool want_kcore = in.text == TextPreference::kcore || (in.text == TextPreference::automatic && k.running);
  if (want_kcore) {
    auto kc = KernelText::from_kcore();
    if (kc) text = std::move(*kc);
    else if (in.text == TextPreference::kcore) return kc.error();
    else rep.notes.push_back(fmt::format("{}; compared with the image instead", kc.error().message));
  }
  if (!text) {
    if (!k.image) {
      Error e = make_error(ExitCode::missing, "verify: the kernel image is needed to compare the source with the kernel's code");
      e.hint = "pass --image /boot/vmlinuz-<release> (or --vmlinux)";
      return e;
    }
    int64_t slide = 0;
    if (k.symbols->source() != analysis::SymbolSource::elf) {
      auto s = analysis::kaslr_offset(*k.symbols, *k.image);
      if (!s)
        return make_error(ExitCode::missing, "verify: cannot relate {} to the image: no _text symbol or no .text section",
                          k.symbols->origin());
      slide = *s;
    }
    text = KernelText::from_image(*k.image, slide);
  }
  rep.origin = text->origin();
  rep.text_from = text->describe();
  rep.slide = text->slide();

  // Sizes: the symbol's own (ELF) or the distance to the next symbol.
  bool exact = k.symbols->source() == analysis::SymbolSource::elf;
  std::vector<uint64_t> addresses;
  for (const auto& s : k.symbols->symbols())
    if (s.in_vmlinux() && s.address >= kKernelHalf) addresses.push_back(s.address);
  std::sort(addresses.begin(), addresses.end());
  addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());

  SymbolResolver resolve = [&](const obj::Symbol& s) -> std::optional<uint64_t> {
    std::string name = s.name;
    if (s.is_section()) {
      if (s.shndx >= in.original->sections.size()) return std::nullopt;
      const obj::Symbol* f = in.original->symbol_at(s.shndx, 0);
      if (!f || f->value != 0 || !f->is_function()) return std::nullopt;
      name = f->name;
    }
    if (name.empty()) return std::nullopt;
    auto ks = kernel_symbol(*k.symbols, *in.symbols, name);
    if (!ks) return std::nullopt;
    uint64_t a = (*ks)->address;
    if (a < kKernelHalf) {  // per-CPU: offsets, not relocated by KASLR in the image; patched at boot
      if (text->origin() == TextOrigin::kcore) return std::nullopt;
      return a;
    }
    return text->to_compare_space(a);
  };

  // What to compare.
  std::vector<std::pair<std::string, std::string>> todo;  // name, role
  for (const auto& f : in.functions) todo.emplace_back(f, "replaced");
  if (in.patched)
    for (const auto& f : relied_on_functions(*in.patched, *in.original, in.functions, *in.symbols))
      todo.emplace_back(f, "relied on by the replacement");
  std::vector<std::pair<std::string, std::string>> expanded;
  for (const auto& [name, role] : todo) {
    expanded.emplace_back(name, role);
    std::string cold = name + ".cold";
    if (in.original->symbol(cold) || !k.symbols->find_vmlinux(cold).empty()) expanded.emplace_back(cold, "part of " + name);
  }

  for (const auto& [name, role] : expanded) {
    CheckedFunction cf;
    cf.role = role;
    cf.comparison.name = name;
    const obj::Symbol* fn = in.original->symbol(name);
    auto ks = kernel_symbol(*k.symbols, *in.symbols, name);
    if (!fn || !fn->is_function() || !fn->defined_in_section()) {
      cf.comparison.first_difference = 0;
      cf.comparison.difference_note = ks ? "the kernel has this function, the source compiles no function of that name (inlined or renamed)"
                                         : "neither the source nor the kernel has it";
      rep.functions.push_back(std::move(cf));
      continue;
    }
    if (!ks) {
      if (k.symbols->find_vmlinux(name).empty()) {
        if (role == "replaced") {
          cf.comparison.first_difference = 0;
          cf.comparison.difference_note = "the source compiles it, the kernel has no function of that name";
          rep.functions.push_back(std::move(cf));
        } else {
          rep.not_comparable.push_back(fmt::format("{} ({}): the kernel has no copy of its own", name, role));
        }
      } else {
        cf.comparison.first_difference = 0;
        cf.comparison.difference_note = "several kernel symbols have this name and none can be told to be this driver's";
        rep.functions.push_back(std::move(cf));
      }
      continue;
    }
    const analysis::Symbol& s = **ks;
    uint64_t size = 0;
    if (exact) size = s.size;
    else {
      auto next = std::upper_bound(addresses.begin(), addresses.end(), s.address);
      size = next == addresses.end() ? fn->size : *next - s.address;
    }
    uint64_t want = std::max<uint64_t>(size, fn->size);
    auto bytes = text->read(s.address, want);
    if (!bytes) bytes = text->read(s.address, fn->size);
    if (!bytes) {
      cf.comparison.first_difference = 0;
      cf.comparison.difference_note = fmt::format("the kernel's bytes at {:#x} cannot be read from {}", s.address, text->describe());
      rep.functions.push_back(std::move(cf));
      continue;
    }
    cf.comparison = compare_function(*in.original, *fn, ByteView(bytes->data(), bytes->size()), text->to_compare_space(s.address), size,
                                     exact, text->origin(), resolve);
    rep.functions.push_back(std::move(cf));
  }

  // Layouts.
  if (in.probe && k.btf) {
    std::vector<std::string> names = structs_to_check(*k.btf, in.functions, rep.notes);
    for (const auto& n : names) {
      std::string why;
      auto l = btf_layout(*k.btf, n, why);
      if (l) rep.layouts.push_back(std::move(*l));
      else rep.notes.push_back(why + ": not checked");
    }
    RR_CHECK(run_probe(rep.layouts, *in.probe));
    rep.layouts_checked = true;
  } else {
    rep.notes.push_back(k.btf ? "struct layouts not checked (no compiler command to probe with)"
                              : "struct layouts not checked: the target's BTF is missing");
  }
  return rep;
}

VerifyInputs inputs_after_plan(const analysis::LoadedKernel& kernel, const obj::Object& original, const obj::Object& patched,
                               const klp::KernelSymbols& symbols, const klp::Plan& plan, const compile::CompiledObject& compiled_original,
                               const std::filesystem::path& kbuild, const std::filesystem::path& work_dir) {
  VerifyInputs in;
  in.kernel = &kernel;
  in.original = &original;
  in.patched = &patched;
  in.symbols = &symbols;
  for (const auto& f : plan.replace) in.functions.push_back(f.name);
  if (!compiled_original.compiler_command.empty())
    in.probe = ProbeCompiler{compiled_original.compiler_command, kbuild, compiled_original.object, compiled_original.source, work_dir};
  return in;
}

Error refusal(const Report& r) {
  Error e = make_error(ExitCode::refused, "the source does not match the target kernel: {}", r.first_problem());
  e.hint =
      "use the kernel source of exactly this kernel build (Debian: the linux-source package of the same version), built with the "
      "kernel's own compiler; --force builds anyway and records it in the module";
  return e;
}

Result<bool> gate_build(const VerifyInputs& inputs, bool force, Report* report_out) {
  auto rep = verify(inputs);
  if (!rep) {
    if (!force) return rep.error();
    fmt::print(stderr, "relax-rmrr: WARNING: --force: the source could not be verified against the kernel ({}); building anyway\n",
               rep.error().message);
    return true;
  }
  if (report_out) *report_out = *rep;
  if (rep->ok()) return false;
  if (!force) return refusal(*rep);
  fmt::print(stderr,
             "relax-rmrr: WARNING: --force: THE SOURCE DOES NOT MATCH THE TARGET KERNEL: {}\n"
             "relax-rmrr: WARNING: the module may corrupt kernel memory; it is marked relax_rmrr_forced=yes in its modinfo\n",
             rep->first_problem());
  return true;
}

Json to_json(const Report& r) {
  Json j = Json::object();
  j.set("ok", r.ok());
  j.set("text_from", r.text_from);
  j.set("origin", std::string(origin_name(r.origin)));
  j.set("kaslr_slide", fmt::format("{:#x}", static_cast<uint64_t>(r.slide)));
  Json fs = Json::array();
  for (const auto& f : r.functions) {
    Json x = to_json(f.comparison);
    x.set("role", f.role);
    fs.push(std::move(x));
  }
  j.set("functions", std::move(fs));
  j.set("not_comparable", Json::strings(r.not_comparable));
  j.set("layouts_checked", r.layouts_checked);
  Json ls = Json::array();
  for (const auto& l : r.layouts) ls.push(to_json(l));
  j.set("layouts", std::move(ls));
  j.set("notes", Json::strings(r.notes));
  if (!r.ok()) j.set("problem", r.first_problem());
  return j;
}

}  // namespace rr::verify
