#include "diff/function_diff.h"

#include <elf.h>

#include <map>
#include <optional>
#include <set>

namespace rr::diff {

std::string status_name(Status s) {
  switch (s) {
    case Status::same: return "same";
    case Status::changed: return "changed";
    case Status::added: return "added";
    case Status::removed: return "removed";
  }
  return "?";
}

namespace {

bool is_cold_piece(const obj::Symbol& s) { return s.name.size() > 5 && s.name.ends_with(".cold"); }

// A function and its out-of-line cold piece, which gcc puts in .text.unlikely.<name> as <name>.cold.
struct Unit {
  const obj::Symbol* main = nullptr;
  const obj::Symbol* cold = nullptr;
};

std::map<std::string, Unit> function_units(const obj::Object& o) {
  std::map<std::string, Unit> units;
  for (const auto& s : o.symbols) {
    if (!s.is_function() || !s.defined_in_section()) continue;
    if (is_cold_piece(s)) units[s.name.substr(0, s.name.size() - 5)].cold = &s;
    else units[s.name].main = &s;
  }
  for (auto it = units.begin(); it != units.end();) it = it->second.main ? std::next(it) : units.erase(it);
  return units;
}

class Comparer {
 public:
  Comparer(const obj::Object& a, const obj::Object& b) : a_(a), b_(b) {}

  // nullopt when equal, else the first difference.
  std::optional<std::string> compare_code(const obj::Symbol& x, const obj::Symbol& y) {
    if (x.size != y.size) return fmt::format("{} is {} bytes, was {}", y.name, y.size, x.size);
    const obj::Section& sx = a_.sections[x.shndx];
    const obj::Section& sy = b_.sections[y.shndx];
    if (x.value + x.size > sx.data.size() || y.value + y.size > sy.data.size()) return fmt::format("{} lies outside its section", y.name);
    auto rx = relas_in(sx, x.value, x.size), ry = relas_in(sy, y.value, y.size);
    if (rx.size() != ry.size()) return fmt::format("{} has {} relocations, had {}", y.name, ry.size(), rx.size());
    std::vector<bool> masked(x.size, false);
    for (size_t i = 0; i < rx.size(); ++i) {
      const obj::Rela& p = *rx[i];
      const obj::Rela& q = *ry[i];
      if (p.offset - x.value != q.offset - y.value || p.type != q.type)
        return fmt::format("{}: relocation {} differs in place or type", y.name, i);
      std::string kp = target_key(a_, p, 0), kq = target_key(b_, q, 0);
      if (kp != kq) return fmt::format("{}+{:#x}: refers to {} instead of {}", y.name, q.offset - y.value, kq, kp);
      for (size_t k = 0; k < obj::rela_width(p.type) && p.offset - x.value + k < x.size; ++k) masked[p.offset - x.value + k] = true;
    }
    for (size_t i = 0; i < x.size; ++i)
      if (!masked[i] && sx.data[x.value + i] != sy.data[y.value + i]) return fmt::format("{}+{:#x}: code differs", y.name, i);
    return std::nullopt;
  }

  // A data object's identity: its bytes outside relocations and its relocation targets.
  std::string fingerprint(const obj::Object& o, const obj::Symbol& s, int depth) {
    const obj::Section& sec = o.sections[s.shndx];
    std::string fp = fmt::format("size={};", s.size);
    if (sec.type == SHT_NOBITS) return fp + "nobits";
    uint64_t end = std::min<uint64_t>(s.value + s.size, sec.data.size());
    std::vector<bool> masked(end > s.value ? end - s.value : 0, false);
    for (const auto* r : relas_in(sec, s.value, s.size)) {
      fp += fmt::format("@{}:{}={};", r->offset - s.value, r->type, target_key(o, *r, depth + 1));
      for (size_t k = 0; k < obj::rela_width(r->type) && r->offset - s.value + k < masked.size(); ++k)
        masked[r->offset - s.value + k] = true;
    }
    for (uint64_t i = s.value; i < end; ++i) fp += masked[i - s.value] ? "__" : fmt::format("{:02x}", sec.data[i]);
    return fp;
  }

 private:
  static std::vector<const obj::Rela*> relas_in(const obj::Section& s, uint64_t start, uint64_t size) {
    std::vector<const obj::Rela*> out;
    for (const auto& r : s.relas)
      if (r.offset >= start && r.offset < start + size) out.push_back(&r);
    return out;
  }

  static std::string string_at(const obj::Section& s, int64_t pos) {
    if (pos < 0 || static_cast<uint64_t>(pos) >= s.data.size()) return fmt::format("<outside {}>", s.name);
    std::string out;
    for (size_t i = static_cast<size_t>(pos); i < s.data.size() && s.data[i] != 0; ++i) out.push_back(static_cast<char>(s.data[i]));
    return out;
  }

  // What a relocation points at, in terms that survive a recompile: names without compiler numbering,
  // string contents instead of string offsets, read-only data by content.
  std::string target_key(const obj::Object& o, const obj::Rela& r, int depth) {
    const obj::Symbol& sym = o.symbols[r.symbol];
    if (!sym.defined_in_section()) return fmt::format("{}{:+}", sym.name, r.addend);
    const obj::Section& sec = o.sections[sym.shndx];
    // For PC-relative references the addend includes -4 for the 4 bytes the CPU has already read past.
    int64_t bias = obj::rela_is_pc_relative(r.type) ? 4 : 0;
    int64_t offset = r.addend + (sym.is_section() ? 0 : static_cast<int64_t>(sym.value));
    if (sec.is_strings()) return fmt::format("\"{}\"", string_at(sec, offset + bias));
    // A constant in a mergeable constant pool (.rodata.cst8/16, reached through a compiler-numbered .LC label
    // or the section): its label number and offset move whenever a constant or string is added before it, so
    // its identity is its bytes.
    if ((sec.flags & SHF_MERGE) && sec.entry_size > 0 && offset + bias >= 0 &&
        static_cast<uint64_t>(offset + bias) + sec.entry_size <= sec.data.size()) {
      std::string bytes;
      for (uint64_t i = 0; i < sec.entry_size; ++i) bytes += fmt::format("{:02x}", sec.data[static_cast<uint64_t>(offset + bias) + i]);
      return fmt::format("const[{}]{:+}", bytes, -bias);
    }
    const obj::Symbol* target =
        sym.is_section() ? o.symbol_at(sec.index, static_cast<uint64_t>(std::max<int64_t>(0, offset + bias))) : &sym;
    if (!target) target = o.symbol_at(sec.index, static_cast<uint64_t>(std::max<int64_t>(0, offset)));
    if (!target) return fmt::format("[{}]{:+}", obj::strip_number_suffixes(sec.name), offset);
    std::string key = fmt::format("{}{:+}", obj::strip_number_suffixes(target->name), offset - static_cast<int64_t>(target->value));
    // Read-only local data is part of the code's meaning: compare it by content (bounded depth for cycles).
    if (target->type == STT_OBJECT && target->bind == STB_LOCAL && !sec.is_writable() && depth < 3)
      key += "{" + fingerprint(o, *target, depth) + "}";
    return key;
  }

  const obj::Object& a_;
  const obj::Object& b_;
};

// Twins across two compiles: the same name, else the same name without compiler numbering, paired in
// order of appearance (gcc numbers clones and static locals in source order).
std::map<std::string, std::string> match_names(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::map<std::string, std::string> out;
  std::set<std::string> in_b(b.begin(), b.end()), taken;
  std::map<std::string, std::vector<std::string>> rest_a, rest_b;
  for (const auto& n : a) {
    if (in_b.count(n)) {
      out[n] = n;
      taken.insert(n);
    } else {
      rest_a[obj::strip_number_suffixes(n)].push_back(n);
    }
  }
  for (const auto& n : b)
    if (!taken.count(n)) rest_b[obj::strip_number_suffixes(n)].push_back(n);
  for (const auto& [stem, names] : rest_a) {
    auto it = rest_b.find(stem);
    if (it == rest_b.end() || it->second.size() != names.size()) continue;
    for (size_t i = 0; i < names.size(); ++i) out[names[i]] = it->second[i];
  }
  return out;
}

std::vector<std::string> pieces_of(const obj::Object& o, const Unit& u) {
  std::vector<std::string> out{o.sections[u.main->shndx].name};
  if (u.cold) out.push_back(o.sections[u.cold->shndx].name);
  return out;
}

bool in_init(const obj::Object& o, const obj::Symbol& s) {
  const std::string& n = o.sections[s.shndx].name;
  return n.starts_with(".init.text") || n.starts_with(".exit.text");
}

}  // namespace

Result<ObjectDiff> compare(const obj::Object& original, const obj::Object& patched) {
  // With -ffunction-sections every function has a section of its own; without it this diff would be blind.
  bool split = false;
  for (const auto& s : original.sections) split |= s.name.starts_with(".text.");
  if (!split)
    return make_error(ExitCode::bad_input, "{} was not compiled with -ffunction-sections: cannot tell functions apart",
                      original.path.string());

  ObjectDiff out;
  auto ua = function_units(original), ub = function_units(patched);
  Comparer cmp(original, patched);

  std::vector<std::string> names_a, names_b;
  for (const auto& [n, u] : ua) names_a.push_back(n);
  for (const auto& [n, u] : ub) names_b.push_back(n);
  auto twins = match_names(names_a, names_b);
  std::set<std::string> matched_b;
  for (const auto& [name, a] : ua) {
    ++out.functions_compared;
    auto t = twins.find(name);
    if (t == twins.end()) {
      out.functions.push_back(
          {name, Status::removed, {}, "absent from the patched object (now inlined or dropped)", in_init(original, *a.main)});
      continue;
    }
    const Unit* b = &ub.at(t->second);
    matched_b.insert(t->second);
    std::optional<std::string> diff = cmp.compare_code(*a.main, *b->main);
    if (!diff && (a.cold != nullptr) != (b->cold != nullptr)) diff = "its cold piece appeared or vanished";
    if (!diff && a.cold) diff = cmp.compare_code(*a.cold, *b->cold);
    if (diff) out.functions.push_back({b->main->name, Status::changed, pieces_of(patched, *b), *diff, in_init(patched, *b->main)});
  }
  for (const auto& [name, b] : ub)
    if (!matched_b.count(name))
      out.functions.push_back({name, Status::added, pieces_of(patched, b), "new in the patched object", in_init(patched, *b.main)});

  // Writable data: a livepatch replaces code, never the kernel's variables. `.discard.*` (__ADDRESSABLE's
  // pointers, ...) is dropped by the linker script: nothing in it ever becomes kernel data.
  auto writable_objects = [](const obj::Object& o) {
    std::map<std::string, const obj::Symbol*> m;
    for (const auto& s : o.symbols) {
      if (s.type != STT_OBJECT || !s.defined_in_section()) continue;
      const obj::Section& sec = o.sections[s.shndx];
      if (sec.is_writable() && sec.name != ".discard" && !sec.name.starts_with(".discard.")) m[s.name] = &s;
    }
    return m;
  };
  auto da = writable_objects(original), db = writable_objects(patched);
  names_a.clear();
  names_b.clear();
  for (const auto& [n, s] : da) names_a.push_back(n);
  for (const auto& [n, s] : db) names_b.push_back(n);
  auto data_twins = match_names(names_a, names_b);
  std::set<std::string> data_matched;
  for (const auto& [name, s] : da) {
    auto t = data_twins.find(name);
    if (t == data_twins.end()) {
      out.data.push_back({name, Status::removed, "absent from the patched object", original.sections[s->shndx].name});
      continue;
    }
    data_matched.insert(t->second);
    if (cmp.fingerprint(original, *s, 0) != cmp.fingerprint(patched, *db.at(t->second), 0))
      out.data.push_back({t->second, Status::changed, "size or initial contents differ", patched.sections[db.at(t->second)->shndx].name});
  }
  for (const auto& [name, s] : db)
    if (!data_matched.count(name)) out.data.push_back({name, Status::added, "new in the patched object", patched.sections[s->shndx].name});
  return out;
}

Json to_json(const ObjectDiff& d) {
  Json fns = Json::array();
  for (const auto& f : d.functions) {
    Json j = Json::object();
    j.set("name", f.name);
    j.set("status", status_name(f.status));
    j.set("sections", Json::strings(f.pieces));
    j.set("reason", f.reason);
    if (f.is_init) j.set("init", true);
    fns.push(std::move(j));
  }
  Json data = Json::array();
  for (const auto& x : d.data) {
    Json j = Json::object();
    j.set("name", x.name);
    j.set("status", status_name(x.status));
    j.set("reason", x.reason);
    j.set("section", x.section);
    data.push(std::move(j));
  }
  Json out = Json::object();
  out.set("functions_compared", d.functions_compared);
  out.set("functions", std::move(fns));
  out.set("data", std::move(data));
  return out;
}

}  // namespace rr::diff
