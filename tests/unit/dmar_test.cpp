// The DMAR decoder against real firmware tables, with iasl (acpica-tools) as the independent oracle.
#include "host/dmar.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

namespace fs = std::filesystem;
using namespace rr;

namespace {

struct OracleRmrr {
  uint64_t base = 0, limit = 0;
  std::vector<std::tuple<int, int, std::vector<dmar::PathEntry>>> scopes;  // type, bus, path
};

// Runs `iasl -d` on the table and reads RMRRs and their scopes back from the disassembly.
std::vector<OracleRmrr> iasl_rmrrs(const fs::path& table) {
  test::TempDir dir;
  fs::copy_file(table, dir.path() / "t.dat");
  auto r = test::run_command(fmt::format("cd {} && iasl -d t.dat", dir.path().string()));
  EXPECT_EQ(r.exit_code, 0) << "iasl failed (is acpica-tools installed? tests/setup/install-deps.sh): " << r.output;
  auto text = read_file_text(dir.path() / "t.dsl");
  EXPECT_TRUE(text.ok());
  if (!text) return {};
  std::vector<OracleRmrr> out;
  bool in_rmrr = false;
  std::regex field(R"(\]\s+([A-Za-z ()]+?)\s+:\s+(\S+))");
  for (const auto& line : split_lines(*text)) {
    std::smatch m;
    if (!std::regex_search(line, m, field)) continue;
    std::string name = m[1], value = m[2];
    if (name == "Subtable Type") {
      in_rmrr = (value == "0001");
      if (in_rmrr) out.emplace_back();
    } else if (!in_rmrr) {
      continue;
    } else if (name == "Base Address") {
      out.back().base = *parse_uint(value, 16);
    } else if (name == "End Address (limit)") {
      out.back().limit = *parse_uint(value, 16);
    } else if (name == "Device Scope Type") {
      out.back().scopes.emplace_back(static_cast<int>(*parse_uint(value, 16)), 0, std::vector<dmar::PathEntry>{});
    } else if (name == "PCI Bus Number") {
      std::get<1>(out.back().scopes.back()) = static_cast<int>(*parse_uint(value, 16));
    } else if (name == "PCI Path") {
      auto comma = value.find(',');
      std::get<2>(out.back().scopes.back())
          .push_back({static_cast<uint8_t>(*parse_uint(value.substr(0, comma), 16)),
                      static_cast<uint8_t>(*parse_uint(value.substr(comma + 1), 16))});
    }
  }
  return out;
}

std::vector<fs::path> fixture_tables() {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(fs::path(RELAX_RMRR_FIXTURES) / "dmar"))
    if (e.path().extension() == ".dat") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

Bytes load(const std::string& name) {
  auto b = read_file_bytes(fs::path(RELAX_RMRR_FIXTURES) / "dmar" / name);
  EXPECT_TRUE(b.ok());
  return b ? *b : Bytes{};
}

// Rewrites length and checksum so a mutated table passes the header checks and reaches the structure walker.
void fix_header(Bytes& t) {
  uint32_t len = static_cast<uint32_t>(t.size());
  std::memcpy(&t[4], &len, 4);
  t[9] = 0;
  t[9] = static_cast<uint8_t>(0x100 - dmar::checksum_of(ByteView(t)));
}

}  // namespace

TEST(Dmar, EveryRealTableMatchesIasl) {
  auto tables = fixture_tables();
  ASSERT_GE(tables.size(), 10u);
  for (const auto& path : tables) {
    SCOPED_TRACE(path.filename().string());
    auto t = dmar::decode_file(path);
    ASSERT_TRUE(t.ok()) << t.error().message;
    EXPECT_TRUE(t->checksum_ok);
    auto oracle = iasl_rmrrs(path);
    ASSERT_EQ(t->rmrrs.size(), oracle.size());
    for (size_t i = 0; i < oracle.size(); ++i) {
      EXPECT_EQ(t->rmrrs[i].base, oracle[i].base);
      EXPECT_EQ(t->rmrrs[i].limit, oracle[i].limit);
      ASSERT_EQ(t->rmrrs[i].scopes.size(), oracle[i].scopes.size());
      for (size_t s = 0; s < oracle[i].scopes.size(); ++s) {
        EXPECT_EQ(t->rmrrs[i].scopes[s].type, std::get<0>(oracle[i].scopes[s]));
        EXPECT_EQ(t->rmrrs[i].scopes[s].start_bus, std::get<1>(oracle[i].scopes[s]));
        EXPECT_EQ(t->rmrrs[i].scopes[s].path, std::get<2>(oracle[i].scopes[s]));
      }
    }
  }
}

TEST(Dmar, HpDl360G7DecodesToTheDocumentedContract) {
  Bytes b = load("hp-proliant-dl360-g7.dat");
  auto t = dmar::decode(ByteView(b));
  ASSERT_TRUE(t.ok()) << t.error().message;
  Json j = dmar::to_json(*t);
  EXPECT_EQ(j["oem_id"].as_string(), "HP    ");
  EXPECT_EQ(j["oem_table_id"].as_string(), "ProLiant");
  EXPECT_EQ(j["host_address_width"].as_uint(), 39u);  // the byte stores 0x26 = width - 1
  EXPECT_TRUE(j["checksum_ok"].as_bool());
  EXPECT_EQ(j["rmrr"][0]["base"].as_uint(), 0xDF7E6000u);
  EXPECT_EQ(j["rmrr"][0]["limit"].as_uint(), 0xDF7E7FFFu);
  EXPECT_EQ(j["rmrr"][0]["scopes"][0]["type"].as_string(), "endpoint");
  EXPECT_EQ(j["rmrr"][0]["scopes"][0]["path"][0][0].as_uint(), 0x1Du);
  EXPECT_EQ(j["rmrr"][0]["scopes"][0]["path"][0][1].as_uint(), 7u);
  EXPECT_EQ(j["drhd"][0]["register_base"].as_uint(), 0xE7FFE000u);
  EXPECT_EQ(j["drhd"][0]["scopes"][0]["type"].as_string(), "ioapic");
  // An RMRR scope through a root port: path 1c.4 then 00.0 behind it.
  EXPECT_EQ(j["rmrr"][1]["scopes"][4]["path"].size(), 2u);
}

TEST(Dmar, OtherStructuresAreListedNotDropped) {
  Bytes samsung = load("samsung-960qha.dat");
  auto t = dmar::decode(ByteView(samsung));
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_TRUE(t->rmrrs.empty());
  std::set<std::string> kinds;
  for (const auto& o : t->others) kinds.insert(dmar::struct_type_name(o.type));
  EXPECT_TRUE(kinds.count("satc")) << "SATC structures expected";
  EXPECT_TRUE(kinds.count("sidp")) << "SIDP structures expected";

  Bytes asus = load("asus-q325uar.dat");
  auto a = dmar::decode(ByteView(asus));
  ASSERT_TRUE(a.ok()) << a.error().message;
  bool saw_andd = false, saw_namespace_scope = false;
  for (const auto& o : a->others) saw_andd |= o.type == 4 && o.detail.find("object") != std::string::npos;
  for (const auto& d : a->drhds)
    for (const auto& s : d.scopes) saw_namespace_scope |= s.type == 5;
  EXPECT_TRUE(saw_andd);
  EXPECT_TRUE(saw_namespace_scope);
}

TEST(Dmar, UnknownStructureTypeIsSkippedWithANote) {
  Bytes b = load("hp-z220-cmt-workstation.dat");
  Bytes extra = {0x42, 0x00, 0x08, 0x00, 1, 2, 3, 4};
  b.insert(b.end(), extra.begin(), extra.end());
  fix_header(b);
  auto t = dmar::decode(ByteView(b));
  ASSERT_TRUE(t.ok()) << t.error().message;
  ASSERT_FALSE(t->others.empty());
  EXPECT_EQ(t->others.back().type, 0x42);
  EXPECT_FALSE(t->notes.empty());
}

TEST(Dmar, EveryTruncationOfEveryRealTableIsACleanError) {
  for (const auto& path : fixture_tables()) {
    SCOPED_TRACE(path.filename().string());
    auto full = read_file_bytes(path);
    ASSERT_TRUE(full.ok());
    for (size_t cut = 0; cut < full->size(); ++cut) {
      Bytes b(full->begin(), full->begin() + static_cast<long>(cut));
      // As cut: the header length no longer matches.
      auto r = dmar::decode(ByteView(b));
      ASSERT_FALSE(r.ok()) << "cut at " << cut;
      EXPECT_EQ(r.error().code, ExitCode::bad_input);
      // With length and checksum fixed up, the walker itself meets the cut structure.
      if (cut >= 48) {
        fix_header(b);
        auto w = dmar::decode(ByteView(b));
        if (!w.ok()) {
          EXPECT_NE(w.error().message.find("offset"), std::string::npos) << w.error().message;
        }
      }
    }
  }
}

TEST(Dmar, CutInsideAStructureNamesItsOffset) {
  Bytes b = load("hp-proliant-dl360-g7.dat");
  b.resize(0x50 + 10);  // into the first RMRR (offset 0x50), inside its fixed part
  fix_header(b);
  auto r = dmar::decode(ByteView(b));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("0x50"), std::string::npos) << r.error().message;
}

TEST(Dmar, LyingLengthsAreErrors) {
  Bytes base = load("hp-proliant-dl360-g7.dat");
  struct Case {
    size_t offset;
    uint16_t value;
    const char* expect;
  };
  // 0x52: first RMRR's length; 0x69: its first scope's length byte.
  for (Case c : {Case{0x52, 0, "shorter than its own header"}, Case{0x52, 2, "shorter than its own header"},
                 Case{0x52, 0xffff, "runs past the end"}, Case{0x52, 20, "fixed part"}}) {
    Bytes b = base;
    std::memcpy(&b[c.offset], &c.value, 2);
    fix_header(b);
    auto r = dmar::decode(ByteView(b));
    ASSERT_FALSE(r.ok()) << c.value;
    EXPECT_NE(r.error().message.find(c.expect), std::string::npos) << r.error().message;
  }
  for (uint8_t scope_len : {0, 3, 7, 0x40}) {
    Bytes b = base;
    b[0x69] = scope_len;
    fix_header(b);
    auto r = dmar::decode(ByteView(b));
    ASSERT_FALSE(r.ok()) << int(scope_len);
    EXPECT_NE(r.error().message.find("device scope"), std::string::npos) << r.error().message;
  }
}

TEST(Dmar, BadChecksumIsRefusedUnlessAsked) {
  Bytes b = load("dell-poweredge-r820.dat");
  b[b.size() - 1] ^= 0x5a;
  auto strict = dmar::decode(ByteView(b));
  ASSERT_FALSE(strict.ok());
  EXPECT_NE(strict.error().message.find("checksum"), std::string::npos);
  auto lax = dmar::decode(ByteView(b), {.require_valid_checksum = false});
  ASSERT_TRUE(lax.ok());
  EXPECT_FALSE(lax->checksum_ok);
}

TEST(Dmar, WrongSignatureAndTinyInputs) {
  Bytes b = load("fujitsu-primergy.dat");
  b[0] = 'X';
  EXPECT_FALSE(dmar::decode(ByteView(b)).ok());
  EXPECT_FALSE(dmar::decode(ByteView()).ok());
  Bytes four = {'D', 'M', 'A', 'R'};
  EXPECT_FALSE(dmar::decode(ByteView(four)).ok());
}

TEST(DmarCli, JsonOnStdoutAndExitCodes) {
  auto ok =
      test::run_command(fmt::format("{} dmar --json {}/dmar/hp-proliant-dl360-g7.dat 2>/dev/null", RELAX_RMRR_BINARY, RELAX_RMRR_FIXTURES));
  ASSERT_EQ(ok.exit_code, 0);
  auto j = Json::parse(ok.output);
  ASSERT_TRUE(j.ok()) << j.error().message;
  EXPECT_EQ((*j)["rmrr"].size(), 3u);

  test::TempDir dir;
  Bytes b = load("hp-proliant-dl360-g7.dat");
  b.resize(100);
  ASSERT_TRUE(write_file_text(dir.path() / "cut.dat", std::string(b.begin(), b.end())).ok());
  auto bad = test::run_command(fmt::format("{{ {} dmar --json {}/cut.dat 2>/dev/null; }}", RELAX_RMRR_BINARY, dir.path().string()));
  EXPECT_EQ(bad.exit_code, 2);
  // No partial table: stdout holds the error object alone.
  auto e = Json::parse(bad.output);
  ASSERT_TRUE(e.ok()) << bad.output;
  ASSERT_NE(e->find("error"), nullptr) << bad.output;
  EXPECT_EQ(e->find("rmrr"), nullptr) << bad.output;
  EXPECT_EQ((*e)["error"]["code"].as_int(), 2);
  EXPECT_NE(bad.output.find("truncated"), std::string::npos) << bad.output;

  auto missing = test::run_command(fmt::format("{} dmar {}/none.dat", RELAX_RMRR_BINARY, dir.path().string()));
  EXPECT_EQ(missing.exit_code, 3);
}

TEST(Dmar, EncodeIsTheInverseOfDecode) {
  for (const auto& path : fixture_tables()) {
    SCOPED_TRACE(path.filename().string());
    auto t = dmar::decode_file(path);
    ASSERT_TRUE(t.ok());
    Bytes again = dmar::encode(*t);
    auto t2 = dmar::decode(ByteView(again));
    ASSERT_TRUE(t2.ok()) << t2.error().message;
    EXPECT_EQ(dmar::to_json(*t).dump(), dmar::to_json(*t2).dump());
  }
  // A table already in encode()'s order comes back byte for byte.
  auto raw = read_file_bytes(fs::path(RELAX_RMRR_FIXTURES) / "dmar/hp-proliant-dl360-g7.dat");
  ASSERT_TRUE(raw.ok());
  auto t = dmar::decode(ByteView(*raw));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(dmar::encode(*t), *raw);
}
