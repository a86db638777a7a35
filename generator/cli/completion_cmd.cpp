// relax-rmrr completion bash: a bash completion script generated at run time from the CLI11 tree, so it
// completes exactly the subcommands and options this binary has. Hidden from --help; documented in relax-rmrr(8).
#include "cli/commands.h"
#include "cli/output.h"

#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace rr::cli {

namespace {

// What completes a value: a file or directory name, one of fixed words, an installed kernel release, nothing.
// Rendered as the KIND argument of _relax_rmrr_values in the script ("" never: "none" means no completion).
using ValueKind = std::string;

// TEXT options whose value is not a path (by long name). Every other TEXT value completes as a file name,
// which is harmless for an option added later.
const std::map<std::string, ValueKind, std::less<>> kNonPathOptions = {
    {"name", "none"}, {"kernel-release", "release"}, {"kernel-build", "none"}, {"version", "none"}};

// Words safe to write unquoted inside double quotes and to hand to compgen -W.
bool safe_word(const std::string& w) {
  return !w.empty() && std::all_of(w.begin(), w.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("._:+@%/,=-").find(c) != std::string_view::npos;
  });
}

std::vector<CLI::Validator*> validators_of(CLI::Option* opt) {
  std::vector<CLI::Validator*> out;
  for (int i = 0;; ++i) {
    try {
      out.push_back(opt->get_validator(i));
    } catch (const CLI::OptionNotFound&) {
      return out;
    }
  }
}

// "{a,b,c}" (IsMember, or "{a->x,b->y}" for a mapping) into its words; empty when it is not such a set.
std::vector<std::string> set_words(const std::string& description) {
  std::vector<std::string> words;
  if (description.size() < 3 || description.front() != '{' || description.back() != '}') return words;
  std::string body = description.substr(1, description.size() - 2);
  size_t start = 0;
  while (start <= body.size()) {
    size_t comma = body.find(',', start);
    std::string item = body.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (auto arrow = item.find("->"); arrow != std::string::npos) item.resize(arrow);
    if (safe_word(item) && item.find(',') == std::string::npos) words.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return words;
}

// "DIR" as a word of the description ("below DIR", "in DIR"), not as part of a path ("DIR/sys").
bool mentions_dir(const std::string& d) {
  if (d.rfind("Directory", 0) == 0) return true;
  for (size_t p = d.find("DIR"); p != std::string::npos; p = d.find("DIR", p + 1)) {
    bool before = p == 0 || !std::isalnum(static_cast<unsigned char>(d[p - 1]));
    bool after = p + 3 == d.size() || (!std::isalnum(static_cast<unsigned char>(d[p + 3])) && d[p + 3] != '/');
    if (before && after) return true;
  }
  return false;
}

ValueKind value_kind(CLI::Option* opt) {
  for (CLI::Validator* v : validators_of(opt)) {
    std::string d = v->get_description();
    if (auto words = set_words(d); !words.empty()) {
      std::string out = "words";
      for (const auto& w : words) out += " " + w;
      return out;
    }
    if (d == "DIR") return "dir";
    if (d == "FILE" || d == "PATH") return "file";
    if (d.find(" in [") != std::string::npos || d.find(" bounded to [") != std::string::npos) return "none";
  }
  std::string type = opt->get_type_name();
  type = type.substr(0, type.find(':'));
  if (type != "TEXT" && type != "PATH" && type != "FILE" && !type.empty()) return "none";  // INT, FLOAT, ...
  if (!opt->get_lnames().empty())
    if (auto it = kNonPathOptions.find(opt->get_lnames().front()); it != kNonPathOptions.end()) return it->second;
  return mentions_dir(opt->get_description()) ? "dir" : "file";
}

// A value count that stands for "every following word" (a vector option); also written into the script.
constexpr int kEveryWord = 9999;

// Values an option takes after its name: 0 for a flag.
int value_count(const CLI::Option* opt) {
  int n = opt->get_items_expected_max();
  return n >= CLI::detail::expected_max_vector_size ? kEveryWord : std::max(n, 0);
}

struct Positional {
  ValueKind kind;
  int count;  // kEveryWord: every remaining word
};

struct AppEntry {
  std::string path;  // "" for the program, "build", "a b" for nested subcommands
  std::vector<std::string> offered_subcommands, offered_options;
  std::vector<std::pair<std::string, std::string>> children;  // word, path (hidden ones too)
  std::vector<std::pair<std::vector<std::string>, std::pair<int, ValueKind>>> options;  // names, (count, kind)
  std::vector<Positional> positionals;
};

void collect(CLI::App* app, const std::string& path, std::vector<AppEntry>& out) {
  AppEntry e;
  e.path = path;
  for (CLI::Option* opt : app->get_options([](const CLI::Option*) { return true; })) {
    std::vector<std::string> names;
    for (const auto& s : opt->get_snames()) names.push_back("-" + s);
    for (const auto& l : opt->get_lnames()) names.push_back("--" + l);
    names.erase(std::remove_if(names.begin(), names.end(), [](const std::string& n) { return !safe_word(n); }), names.end());
    int count = value_count(opt);
    ValueKind kind = count > 0 ? value_kind(opt) : "none";
    if (!names.empty()) {
      if (!opt->get_group().empty()) e.offered_options.insert(e.offered_options.end(), names.begin(), names.end());
      e.options.push_back({names, {count, kind}});
    }
    if (opt->get_positional()) e.positionals.push_back({kind, std::max(count, 1)});
  }
  std::vector<CLI::App*> subs = app->get_subcommands([](CLI::App*) { return true; });
  for (CLI::App* sub : subs) {
    if (!safe_word(sub->get_name())) continue;
    std::string child = path.empty() ? sub->get_name() : path + " " + sub->get_name();
    e.children.push_back({sub->get_name(), child});
    if (!sub->get_group().empty()) e.offered_subcommands.push_back(sub->get_name());
  }
  out.push_back(std::move(e));
  for (CLI::App* sub : subs)
    if (safe_word(sub->get_name())) collect(sub, path.empty() ? sub->get_name() : path + " " + sub->get_name(), out);
}

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

std::string bash_script(CLI::App& root) {
  std::vector<AppEntry> apps;
  collect(&root, "", apps);
  const std::string prog = root.get_name();
  std::string s = fmt::format(
      "# bash completion for {0}, generated by `{0} completion bash` from the command line definition of\n"
      "# {1}. Install as /usr/share/bash-completion/completions/{0}, or source it.\n\n",
      prog, RELAX_RMRR_VERSION);

  s += "# _relax_rmrr_option PATH WORD: _relax_rmrr_n = how many values option WORD of (sub)command PATH takes,\n"
       "# _relax_rmrr_v = what completes them. An unknown option counts as a flag.\n"
       "_relax_rmrr_option() {\n  case \"$1 $2\" in\n";
  for (const auto& a : apps)
    for (const auto& [names, spec] : a.options) {
      std::string patterns;
      for (const auto& n : names) {
        if (!patterns.empty()) patterns += '|';
        patterns += fmt::format("\"{} {}\"", a.path, n);
      }
      s += fmt::format("    {}) _relax_rmrr_n={} _relax_rmrr_v=\"{}\" ;;\n", patterns, spec.first, spec.second);
    }
  s += "    *) _relax_rmrr_n=0 _relax_rmrr_v=none ;;\n  esac\n}\n\n";

  s += "# _relax_rmrr_child PATH WORD: _relax_rmrr_c = the path of subcommand WORD below PATH, empty if none.\n"
       "_relax_rmrr_child() {\n  case \"$1 $2\" in\n";
  for (const auto& a : apps)
    for (const auto& [word, child] : a.children) s += fmt::format("    \"{} {}\") _relax_rmrr_c=\"{}\" ;;\n", a.path, word, child);
  s += "    *) _relax_rmrr_c='' ;;\n  esac\n}\n\n";

  s += "# _relax_rmrr_positional PATH INDEX: _relax_rmrr_v = what completes positional argument INDEX (from 0)\n"
       "# of PATH, empty when PATH takes no such argument.\n"
       "_relax_rmrr_positional() {\n  _relax_rmrr_v=''\n  case $1 in\n";
  for (const auto& a : apps) {
    if (a.positionals.empty()) continue;
    s += fmt::format("    \"{}\")\n", a.path);
    int first = 0;
    for (const auto& p : a.positionals) {
      if (p.count >= kEveryWord) s += fmt::format("      (($2 >= {})) && _relax_rmrr_v=\"{}\" && return\n", first, p.kind);
      else s += fmt::format("      (($2 >= {} && $2 < {})) && _relax_rmrr_v=\"{}\" && return\n", first, first + p.count, p.kind);
      first += p.count;
    }
    s += "      ;;\n";
  }
  s += "  esac\n  return 0\n}\n\n";

  s += "# _relax_rmrr_words PATH: the subcommands (_relax_rmrr_s) and options (_relax_rmrr_o) offered in PATH.\n"
       "_relax_rmrr_words() {\n  case $1 in\n";
  for (const auto& a : apps)
    s += fmt::format("    \"{}\") _relax_rmrr_s=\"{}\" _relax_rmrr_o=\"{}\" ;;\n", a.path, join(a.offered_subcommands),
                     join(a.offered_options));
  s += "    *) _relax_rmrr_s='' _relax_rmrr_o='' ;;\n  esac\n}\n\n";

  s += R"SH(# _relax_rmrr_values KIND CUR: COMPREPLY for a value of that kind.
_relax_rmrr_values() {
  case $1 in
    file) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -f -- "$2") ;;
    dir) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -d -- "$2") ;;
    release) mapfile -t COMPREPLY < <(compgen -W "$(command ls /lib/modules 2>/dev/null)" -- "$2") ;;
    "words "*) mapfile -t COMPREPLY < <(compgen -W "${1#words }" -- "$2") ;;
    *) COMPREPLY=() ;;
  esac
}

_relax_rmrr() {
  local cur=${COMP_WORDS[COMP_CWORD]} path='' w i pending=0 kind=none npos=0
  local _relax_rmrr_n _relax_rmrr_v _relax_rmrr_c _relax_rmrr_s _relax_rmrr_o
  COMPREPLY=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    [[ $w == = ]] && continue # --option=value, split at '=' by COMP_WORDBREAKS
    case $w in
      -?*)
        pending=0 kind=none
        [[ $w == *=* ]] && continue # --option=value in one word
        _relax_rmrr_option "$path" "$w"
        pending=$_relax_rmrr_n kind=$_relax_rmrr_v
        ;;
      *)
        if ((pending > 0)); then
          pending=$((pending - 1))
          continue
        fi
        _relax_rmrr_child "$path" "$w"
        if [[ -n $_relax_rmrr_c ]]; then
          path=$_relax_rmrr_c npos=0
        else
          npos=$((npos + 1))
        fi
        ;;
    esac
  done
  [[ $cur == = ]] && cur=''
  if ((pending > 0)); then
    _relax_rmrr_values "$kind" "$cur"
    return 0
  fi
  _relax_rmrr_words "$path"
  if [[ $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$_relax_rmrr_o" -- "$cur")
    return 0
  fi
  if [[ -n $_relax_rmrr_s && $npos == 0 ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$_relax_rmrr_s" -- "$cur")
    return 0
  fi
  _relax_rmrr_positional "$path" "$npos"
  if [[ -n $_relax_rmrr_v ]]; then
    _relax_rmrr_values "$_relax_rmrr_v" "$cur"
  else
    mapfile -t COMPREPLY < <(compgen -W "$_relax_rmrr_o" -- "$cur")
  fi
  return 0
}
)SH";
  s += fmt::format("complete -F _relax_rmrr {}\n", prog);
  return s;
}

}  // namespace

Command add_completion_command(CLI::App& root) {
  auto shell = std::make_shared<std::string>();
  CLI::App* app = root.add_subcommand("completion", "Print a shell completion script for this command line");
  app->group("");  // hidden from `relax-rmrr --help`; documented in relax-rmrr(8)
  app->add_option("shell", *shell, "The shell (bash)")->required()->check(CLI::IsMember({"bash"}));
  app->footer(
      "Example: relax-rmrr completion bash > /usr/share/bash-completion/completions/relax-rmrr\n"
      "Exit codes: 0 written, 2 unknown shell.");
  return {app, [&root, shell] {  // holding `shell` keeps the option's target alive
            if (auto st = write_stdout(bash_script(root)); !st) return report_error(st.error());
            return 0;
          }};
}

}  // namespace rr::cli
