// The folders of generator/ include each other only down the pipeline: a folder may include headers of the folders
// below it in kLayers and never of one above, so the folder graph has no cycle and a reader can take the folders
// in order. The graph is read from the sources here (every `#include "folder/..."` line).
#include "common/file.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <regex>
#include <set>
#include <vector>

namespace fs = std::filesystem;

namespace {

// Bottom to top: the data flows upwards, analysis -> source -> compile -> diff -> klp -> verify -> pipeline, with
// the machine's facts (host) and what acts on the machine (lifecycle) beside them, and the CLI on top.
const std::vector<std::string> kLayers = {"common", "elf", "analysis", "host",     "source",    "compile",
                                          "diff",   "klp", "verify",   "pipeline", "lifecycle", "cli"};

struct Edge {
  std::string from, to, file;  // `file` (in folder `from`) includes a header of folder `to`
};

std::vector<Edge> folder_edges(const fs::path& generator) {
  static const std::regex include_line(R"re(^\s*#\s*include\s+"([a-z_]+)/[^"]+")re");
  std::vector<Edge> edges;
  for (const auto& e : fs::recursive_directory_iterator(generator)) {
    if (!e.is_regular_file()) continue;
    auto ext = e.path().extension();
    if (ext != ".h" && ext != ".cpp") continue;
    std::string folder = e.path().lexically_relative(generator).begin()->string();
    auto text = rr::read_file_text(e.path());
    if (!text) continue;
    for (const auto& line : rr::split_lines(*text)) {
      std::smatch m;
      if (std::regex_search(line, m, include_line) && m[1] != folder)
        edges.push_back({folder, m[1], e.path().lexically_relative(generator).string()});
    }
  }
  return edges;
}

// A cycle of folders, as "a -> b -> a", or empty.
std::string find_cycle(const std::map<std::string, std::set<std::string>>& graph) {
  std::map<std::string, int> state;  // 0 unseen, 1 on the current path, 2 done
  std::vector<std::string> path;
  std::string found;
  std::function<bool(const std::string&)> visit = [&](const std::string& n) {
    state[n] = 1;
    path.push_back(n);
    auto it = graph.find(n);
    if (it != graph.end())
      for (const auto& next : it->second) {
        if (state[next] == 1) {
          auto from = std::find(path.begin(), path.end(), next);
          for (auto p = from; p != path.end(); ++p) found += *p + " -> ";
          found += next;
          return true;
        }
        if (state[next] == 0 && visit(next)) return true;
      }
    path.pop_back();
    state[n] = 2;
    return false;
  };
  for (const auto& [n, _] : graph)
    if (state[n] == 0 && visit(n)) break;
  return found;
}

}  // namespace

TEST(IncludeGraph, FoldersIncludeOnlyDownThePipeline) {
  fs::path generator = fs::path(RELAX_RMRR_SOURCE_DIR) / "generator";
  auto edges = folder_edges(generator);
  ASSERT_FALSE(edges.empty()) << "no includes found under " << generator;
  auto rank = [](const std::string& folder) { return std::find(kLayers.begin(), kLayers.end(), folder) - kLayers.begin(); };
  for (const auto& e : edges) {
    ASSERT_LT(rank(e.from), static_cast<long>(kLayers.size())) << "folder generator/" << e.from << "/ is not in kLayers";
    ASSERT_LT(rank(e.to), static_cast<long>(kLayers.size())) << e.file << " includes from unknown folder " << e.to;
    EXPECT_GT(rank(e.from), rank(e.to)) << e.file << " (" << e.from << ") includes a header of " << e.to
                                        << ", which comes later in the pipeline";
  }
}

TEST(IncludeGraph, NoCycleBetweenFolders) {
  std::map<std::string, std::set<std::string>> graph;
  for (const auto& e : folder_edges(fs::path(RELAX_RMRR_SOURCE_DIR) / "generator")) graph[e.from].insert(e.to);
  EXPECT_EQ(find_cycle(graph), "");
}

TEST(IncludeGraph, TheCycleFinderFindsACycle) {
  std::map<std::string, std::set<std::string>> graph = {{"a", {"b"}}, {"b", {"c"}}, {"c", {"a"}}, {"d", {"a"}}};
  EXPECT_EQ(find_cycle(graph), "a -> b -> c -> a");
  graph["c"].clear();
  EXPECT_EQ(find_cycle(graph), "");
}
