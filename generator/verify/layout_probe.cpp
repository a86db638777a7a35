#include "verify/layout_probe.h"

#include "analysis/btf_compat.h"
#include "common/file.h"
#include "common/subprocess.h"
#include "elf/object.h"

#include <bpf/btf.h>
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <regex>
#include <set>

namespace fs = std::filesystem;

namespace rr::verify {

namespace {

// The intel driver's attach and reserved-region paths: the attach callback reads
// device_domain_info/dmar_domain/intel_iommu and walks dmar_rmrr_units (dmar_rmrr_unit, dmar_dev_scope) over
// pci_dev/pci_bus/device; get_resv_regions allocates iommu_resv_region lists; from 6.6 the core's dev_iommu.
const char* const kFixedStructs[] = {
    "device_domain_info", "dmar_domain",       "intel_iommu", "dmar_rmrr_unit", "dmar_dev_scope", "iommu_domain",
    "dev_iommu",          "iommu_resv_region", "device",      "pci_dev",        "pci_bus",        "list_head"};

const struct btf_type* skip_mods(const struct btf* b, uint32_t& id) {
  const struct btf_type* t = btf__type_by_id(b, id);
  for (int guard = 0; t && guard < 32; ++guard) {
    int k = btf_kind(t);
    if (k != BTF_KIND_TYPEDEF && k != BTF_KIND_CONST && k != BTF_KIND_VOLATILE && k != BTF_KIND_RESTRICT &&
        k != analysis::btf_compat::kKindTypeTag && k != BTF_KIND_PTR)
      return t;
    id = t->type;
    t = btf__type_by_id(b, id);
  }
  return t;
}

void add_struct_of(const struct btf* b, uint32_t id, std::vector<std::string>& out) {
  const struct btf_type* t = skip_mods(b, id);
  if (!t || btf_kind(t) != BTF_KIND_STRUCT) return;
  const char* n = btf__name_by_offset(b, t->name_off);
  if (n && *n) out.emplace_back(n);
}

void collect_members(const struct btf* b, const struct btf_type* t, uint64_t base_bits, std::vector<MemberLayout>& out,
                     std::set<std::string>& seen, int depth) {
  if (depth > 8) return;
  const struct btf_member* m = btf_members(t);
  for (uint16_t i = 0; i < btf_vlen(t); ++i, ++m) {
    uint64_t bits = base_bits + btf_member_bit_offset(t, i);
    const char* n = btf__name_by_offset(b, m->name_off);
    if (!n || !*n) {  // anonymous struct/union: its members are members of the outer struct in C
      uint32_t id = m->type;
      const struct btf_type* inner = skip_mods(b, id);
      if (inner && (btf_kind(inner) == BTF_KIND_STRUCT || btf_kind(inner) == BTF_KIND_UNION))
        collect_members(b, inner, bits, out, seen, depth + 1);
      continue;
    }
    if (btf_member_bitfield_size(t, i) != 0 || bits % 8 != 0) continue;  // offsetof cannot name a bitfield
    if (!seen.insert(n).second) continue;
    out.push_back({n, bits / 8, std::nullopt});
  }
}

}  // namespace

std::vector<std::string> structs_to_check(const analysis::Btf& btf, const std::vector<std::string>& functions,
                                          std::vector<std::string>& notes) {
  std::vector<std::string> want(std::begin(kFixedStructs), std::end(kFixedStructs));
  const struct btf* b = btf.raw();
  for (const auto& f : functions) {
    auto id = btf.find(f, BTF_KIND_FUNC);
    if (!id) {
      notes.push_back(fmt::format("{} has no BTF prototype: only the fixed struct list is checked for it", f));
      continue;
    }
    const struct btf_type* func = btf__type_by_id(b, *id);
    const struct btf_type* proto = func ? btf__type_by_id(b, func->type) : nullptr;
    if (!proto || btf_kind(proto) != BTF_KIND_FUNC_PROTO) continue;
    add_struct_of(b, proto->type, want);
    const struct btf_param* p = btf_params(proto);
    for (uint16_t i = 0; i < btf_vlen(proto); ++i) add_struct_of(b, p[i].type, want);
  }
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& n : want) {
    if (!seen.insert(n).second) continue;
    if (!btf.find(n, BTF_KIND_STRUCT)) {
      notes.push_back(fmt::format("struct {} is not in the target's BTF: not checked", n));
      continue;
    }
    out.push_back(n);
  }
  return out;
}

std::optional<StructLayout> btf_layout(const analysis::Btf& btf, const std::string& name, std::string& why_not) {
  const struct btf* b = btf.raw();
  // Every complete struct of that name: BTF keeps several when CUs saw different definitions.
  std::vector<uint32_t> ids;
  uint32_t n = analysis::btf_compat::type_count(b);
  for (uint32_t id = 1; id < n; ++id) {
    const struct btf_type* t = btf__type_by_id(b, id);
    if (!t || btf_kind(t) != BTF_KIND_STRUCT) continue;
    const char* tn = btf__name_by_offset(b, t->name_off);
    if (tn && name == tn) ids.push_back(id);
  }
  if (ids.empty()) {
    why_not = fmt::format("struct {} is not in the target's BTF", name);
    return std::nullopt;
  }
  std::set<uint64_t> sizes;
  for (uint32_t id : ids) sizes.insert(btf__type_by_id(b, id)->size);
  if (sizes.size() > 1) {
    why_not = fmt::format("the target's BTF has {} different structs named {}", ids.size(), name);
    return std::nullopt;
  }
  StructLayout s;
  s.name = name;
  const struct btf_type* t = btf__type_by_id(b, ids.front());
  s.btf_size = t->size;
  std::set<std::string> seen;
  collect_members(b, t, 0, s.members, seen, 0);
  return s;
}

std::string probe_source(const std::string& include, const std::vector<StructLayout>& layouts) {
  // Not ".relax_...": the assembler takes a section named .rela* for a relocation section.
  std::string s =
      fmt::format("/* relax-rmrr layout probe: never linked, never run; its data are read back. */\n#include \"{}\"\n", include);
  s += "const unsigned long long relax_rmrr_layout_probe[] __attribute__((used, section(\".rr_layout_probe\"))) = {\n";
  for (const auto& l : layouts) {
    s += fmt::format("  sizeof(struct {}),\n", l.name);
    for (const auto& m : l.members) s += fmt::format("  __builtin_offsetof(struct {}, {}),\n", l.name, m.name);
  }
  s += "  0\n};\n";
  return s;
}

namespace {
// The fast probe's text: compiles (with -fsyntax-only) only when every layout is BTF's.
std::string probe_assertions(const std::string& include, const std::vector<StructLayout>& layouts) {
  std::string s = fmt::format("/* relax-rmrr layout check: never compiled to code. */\n#include \"{}\"\n", include);
  for (const auto& l : layouts) {
    s += fmt::format("_Static_assert(sizeof(struct {0}) == {1}, \"relax-rmrr: sizeof(struct {0})\");\n", l.name, l.btf_size);
    for (const auto& m : l.members)
      s += fmt::format("_Static_assert(__builtin_offsetof(struct {0}, {1}) == {2}, \"relax-rmrr: struct {0}.{1}\");\n", l.name, m.name,
                       m.btf_offset);
  }
  return s;
}
}  // namespace

namespace {
// Whole words of a shell command line: delimited by blanks or the line's ends.
std::vector<size_t> word_positions(const std::string& cmd, const std::string& w) {
  std::vector<size_t> at;
  if (w.empty()) return at;
  auto blank = [](char ch) { return ch == ' ' || ch == '\t' || ch == '\n'; };
  for (size_t i = cmd.find(w); i != std::string::npos; i = cmd.find(w, i + 1))
    if ((i == 0 || blank(cmd[i - 1])) && (i + w.size() == cmd.size() || blank(cmd[i + w.size()]))) at.push_back(i);
  return at;
}
void replace_words(std::string& cmd, const std::string& from, const std::string& to) {
  auto at = word_positions(cmd, from);
  for (auto it = at.rbegin(); it != at.rend(); ++it) cmd.replace(*it, from.size(), to);
}
}  // namespace

Result<ProbeCommandPaths> locate_probe_paths(const std::string& command, const ProbeCompiler& c) {
  // Absolute paths run in the kbuild tree (up to 6.12), or relative to the make's M= directory (6.13+).
  if (auto p = compile::command_paths(command, c.object, c.source, c.cwd)) return *p;
  return make_error(ExitCode::failure, "layout probe: the recorded compiler command does not name {} and {}", c.object.string(),
                    c.source.string());
}

Status run_probe(std::vector<StructLayout>& layouts, const ProbeCompiler& c) {
  std::error_code ec;
  fs::create_directories(c.work_dir, ec);
  fs::path src = c.work_dir / "relax_rmrr_layout_probe.c";
  fs::path out = c.work_dir / "relax_rmrr_layout_probe.o";
  fs::remove(out, ec);

  // The same command line with our source and object, and without kbuild's dependency file.
  std::string cmd = c.command;
  std::string source = c.source.string();
  RR_ASSIGN(ProbeCommandPaths paths, locate_probe_paths(cmd, c));
  replace_words(cmd, paths.object, out.string());
  replace_words(cmd, paths.source, src.string());
  cmd = std::regex_replace(cmd, std::regex(R"(-Wp,-MMD,\S+)"), "");
  const fs::path cwd = paths.cwd;

  auto probed = [&] {
    std::vector<StructLayout> v;
    for (const auto& l : layouts)
      if (l.defined_in_source) v.push_back(l);
    return v;
  };
  // Fast path: BTF's sizes and offsets asserted with _Static_assert and the same command run with
  // -fsyntax-only, so the driver is parsed but no code is generated for it (about a fifth of a compile). When
  // every assertion holds, the compiled layout is BTF's; on any failure the full probe below runs as before, to
  // read the compiled values and name the mismatch.
  if (std::all_of(layouts.begin(), layouts.end(), [](const StructLayout& l) { return l.defined_in_source && l.problem.empty(); })) {
    RR_CHECK(write_file_text(src, probe_assertions(source, layouts)));
    auto fast = proc::run({{"sh", "-c", cmd + " -fsyntax-only"}, cwd, {}, {}, {}});
    if (fast && fast->ok()) {
      for (auto& l : layouts) {
        l.compiled_size = l.btf_size;
        for (auto& m : l.members) m.compiled_offset = m.btf_offset;
      }
      return ok_status();
    }
  }
  for (int attempt = 0;; ++attempt) {
    RR_CHECK(write_file_text(src, probe_source(source, probed())));
    // The command is the one kbuild recorded and ran through its shell; it is run the same way.
    RR_ASSIGN(proc::Outcome r, proc::run({{"sh", "-c", cmd}, cwd, {}, {}, {}}));
    if (r.ok()) break;
    // Members or structs the source does not have: layout mismatches to report; then probe the rest.
    static const std::regex no_member(R"((?:‘|')struct (\w+)(?:’|') has no member named (?:‘|')(\w+)(?:’|'))");
    static const std::regex incomplete(R"(incomplete type (?:‘|')struct (\w+)(?:’|'))");
    bool removed = false;
    for (std::sregex_iterator it(r.err.begin(), r.err.end(), no_member), end; it != end; ++it) {
      std::string sn = (*it)[1].str(), mn = (*it)[2].str();
      for (auto& l : layouts) {
        if (l.name != sn) continue;
        auto m = std::find_if(l.members.begin(), l.members.end(), [&](const MemberLayout& x) { return x.name == mn; });
        if (m == l.members.end()) continue;
        if (l.problem.empty()) l.problem = fmt::format("the target's struct {} has a member {} that the source's does not", sn, mn);
        l.members.erase(m);
        removed = true;
      }
    }
    for (std::sregex_iterator it(r.err.begin(), r.err.end(), incomplete), end; it != end; ++it) {
      std::string sn = (*it)[1].str();
      for (auto& l : layouts) {
        if (l.name != sn || !l.defined_in_source) continue;
        l.problem = fmt::format("the source does not define struct {}", sn);
        l.defined_in_source = false;
        removed = true;
      }
    }
    if (!removed || attempt >= 4)
      return make_error(ExitCode::failure, "the layout probe does not compile against this source: {}", proc::last_lines(r.err, 6));
  }

  RR_ASSIGN(obj::Object o, obj::load(out));
  const obj::Section* sec = o.section(".rr_layout_probe");
  if (!sec) return make_error(ExitCode::failure, "layout probe: {} has no .rr_layout_probe section", out.string());
  ByteView d(sec->data.data(), sec->data.size());
  size_t at = 0;
  auto next = [&]() -> std::optional<uint64_t> {
    auto v = d.read<uint64_t>(at);
    at += 8;
    return v;
  };
  for (auto& l : layouts) {
    if (!l.defined_in_source) continue;
    l.compiled_size = next();
    for (auto& m : l.members) m.compiled_offset = next();
    if (!l.compiled_size) return make_error(ExitCode::failure, "layout probe: {} is shorter than its source says", out.string());
    if (!l.problem.empty()) continue;
    if (*l.compiled_size != l.btf_size) {
      l.problem = fmt::format("sizeof(struct {}) is {} in the target, {} as compiled", l.name, l.btf_size, *l.compiled_size);
      continue;
    }
    for (const auto& m : l.members)
      if (m.compiled_offset && *m.compiled_offset != m.btf_offset) {
        l.problem =
            fmt::format("struct {}.{} is at offset {} in the target, {} as compiled", l.name, m.name, m.btf_offset, *m.compiled_offset);
        break;
      }
  }
  return ok_status();
}

Json to_json(const StructLayout& s) {
  Json j = Json::object();
  j.set("struct", s.name);
  j.set("btf_size", s.btf_size);
  if (s.compiled_size) j.set("compiled_size", *s.compiled_size);
  j.set("members_checked", s.members.size());
  j.set("ok", s.ok());
  if (!s.problem.empty()) j.set("problem", s.problem);
  return j;
}

}  // namespace rr::verify
