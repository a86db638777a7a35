#include "klp/plan.h"

#include <elf.h>

#include <algorithm>
#include <deque>
#include <map>
#include <set>

namespace rr::klp {

KernelSymbols::KernelSymbols(const analysis::SymbolTable& symbols, const analysis::ModuleSymvers* symvers, const obj::Object& original)
    : symbols_(symbols), symvers_(symvers) {
  if (!symbols.addresses_known()) return;
  // Where this object's code sits in the kernel: the span of its functions that have unique names there.
  uint64_t lo = UINT64_MAX, hi = 0;
  for (const auto& s : original.symbols) {
    if (!s.is_function() || !s.defined_in_section()) continue;
    auto found = symbols.find_vmlinux(s.name);
    if (found.size() != 1 || !found[0]->is_function()) continue;
    lo = std::min(lo, found[0]->address);
    hi = std::max(hi, found[0]->address);
  }
  if (lo <= hi) range_ = std::make_pair(lo, hi);
}

TargetSymbol KernelSymbols::lookup(const std::string& name) const {
  TargetSymbol t;
  auto found = symbols_.find_vmlinux(name);
  if (found.empty()) return t;
  t.found = true;
  t.exported = symvers_ && symvers_->exported(name);
  if (found.size() == 1) return t;
  // Several static symbols share the name: take the one inside this object's span.
  const analysis::Symbol* pick = nullptr;
  if (range_) {
    for (const auto* s : found) {
      if (s->address < range_->first || s->address > range_->second) continue;
      if (pick) {
        pick = nullptr;
        break;
      }
      pick = s;
    }
  }
  if (!pick) {
    t.problem = fmt::format("{} symbols are named {} in the kernel and none can be told to be this driver's{}", found.size(), name,
                            symbols_.addresses_known() ? "" : " (symbol addresses are hidden: run as root or pass --kallsyms)");
    return t;
  }
  t.exported = false;  // an exported name is unique; a duplicate is a static one
  t.sympos = symbols_.sympos(*pick).value_or(0);
  return t;
}

bool KernelSymbols::is_function(const std::string& name) const {
  auto found = symbols_.find_vmlinux(name);
  return !found.empty() && std::all_of(found.begin(), found.end(), [](const auto* s) { return s->is_function(); });
}

namespace {

// Functions of `o` whose code refers to the function `name` (calls, or takes its address).
std::vector<std::string> callers_of(const obj::Object& o, const std::string& name) {
  std::set<std::string> out;
  const obj::Symbol* f = o.symbol(name);
  if (!f) return {};
  for (const auto& sec : o.sections) {
    if (!sec.is_text()) continue;
    for (const auto& r : sec.relas) {
      const obj::Symbol& t = o.symbols[r.symbol];
      bool hits = t.index == f->index || (t.is_section() && t.shndx == f->shndx);
      if (!hits) continue;
      const obj::Symbol* caller = o.symbol_at(sec.index, r.offset);
      if (!caller || caller->index == f->index) continue;
      std::string n = caller->name;
      if (n.ends_with(".cold")) n.resize(n.size() - 5);
      out.insert(n);
    }
  }
  return {out.begin(), out.end()};
}

}  // namespace

Result<Plan> plan_replacements(const diff::ObjectDiff& d, const obj::Object& patched, const KernelSymbols& kernel,
                               const std::unordered_set<std::string>* traceable) {
  Plan plan;
  for (const auto& x : d.data) {
    // Per-call-site metadata (dynamic debug descriptors, WARN_ONCE flags) is carried by the module itself.
    if (x.section == "__dyndbg" || x.section.starts_with(".data.once")) continue;
    return make_error(ExitCode::refused, "the change alters data, which a livepatch cannot: {} ({}, {})", x.name,
                      diff::status_name(x.status), x.reason);
  }
  std::map<std::string, std::string> wanted;  // name -> why
  std::deque<std::pair<std::string, std::string>> work;
  for (const auto& f : d.functions) {
    if (f.is_init) {
      plan.notes.push_back(fmt::format("{} changed, but it is boot-time (__init) code: it has run already and is left alone", f.name));
      continue;
    }
    if (f.status == diff::Status::removed) {
      plan.notes.push_back(
          fmt::format("{} is no longer a function of its own in the patched object; its callers carry the change", f.name));
      continue;
    }
    if (f.status == diff::Status::added) {
      plan.notes.push_back(fmt::format("{} is new in the patched object; it is carried by the functions that use it", f.name));
      continue;
    }
    work.emplace_back(f.name, "changed");
  }
  std::set<std::string> seen;
  while (!work.empty()) {
    auto [name, why] = work.front();
    work.pop_front();
    if (!seen.insert(name).second) continue;
    TargetSymbol t = kernel.lookup(name);
    if (!t.problem.empty()) return make_error(ExitCode::refused, "cannot replace {}: {}", name, t.problem);
    if (t.found && kernel.is_function(name)) {
      wanted[name] = why;
      continue;
    }
    // The kernel inlined it: its kernel callers hold the old copy, so they are what gets replaced.
    auto callers = callers_of(patched, name);
    if (callers.empty())
      return make_error(ExitCode::refused,
                        "{} changed, the kernel has no function of that name (inlined differently), and nothing in the object calls it",
                        name);
    for (const auto& c : callers) work.emplace_back(c, fmt::format("calls {}, which the kernel inlined", name));
  }
  for (const auto& [name, why] : wanted) {
    if (traceable && !traceable->count(name))
      return make_error(ExitCode::refused,
                        "{} is not in available_filter_functions: ftrace cannot redirect it, so livepatch cannot replace it", name);
    plan.replace.push_back({name, why, kernel.lookup(name).sympos});
  }
  if (plan.replace.empty())
    return make_error(ExitCode::refused, "nothing to replace: the change made no difference to any patchable function");
  return plan;
}

Json to_json(const Plan& p) {
  Json j = Json::object();
  j.set("replace", Json::array_of(p.replace, [](const PlannedFunction& f) {
          return Json(Json::Object{{"name", f.name}, {"sympos", f.sympos}, {"why", f.why}});
        }));
  j.set("notes", Json::strings(p.notes));
  return j;
}

}  // namespace rr::klp
