// Parser benchmarks (Google Benchmark; configure with -DRELAX_RMRR_BENCH=ON, run build/tests/parsers_bench).
// Each runs next to a baseline on the same bytes in the same process (bench_common.h): x_baseline is the
// CPU-time ratio operation/baseline.
//   DMAR decode         real firmware tables (tests/fixtures/dmar) and a synthetic 256-RMRR table; vs memcpy
//   kallsyms, System.map the Debian 6.1 kallsyms dump (kernel.env KALLSYMS; RELAX_RMRR_BENCH_KALLSYMS names
//                        another, without either a synthetic 100k-line file) and a System.map made from it
//                        (Debian ships only a stand-in); vs reading the file into memory
//   bzImage -> ELF      the Debian 6.1 vmlinuz (kernel.env VMLINUZ); vs the raw library decompressing the same
//                        payload into a buffer of the size the kernel appends (skipped without the image)
//   BTF load            the .BTF of that vmlinux (or RELAX_RMRR_BENCH_BTF, else /sys/kernel/btf/vmlinux);
//                        vs memcpy of the same bytes
//   symbols from image  per Debian kernel prepared (6.1, 6.12, 7.3): read_kernel_image + decode_image_kallsyms
//                        vs read_kernel_image alone (beyond_s: the decode's cost beyond decompression), and the
//                        decode alone vs memcpy of .rodata; without any of them a synthetic xz image of 100k
//                        symbols (KallsymsEncoder)
// Without the Debian 6.1 kernel (tests/setup/kernel.sh debian-6.1) the benchmarks that need it are skipped
// with a message saying so.
#include "analysis/btf.h"
#include "analysis/bzimage.h"
#include "analysis/image_kallsyms.h"
#include "analysis/symbols.h"
#include "bench_common.h"
#include "common/file.h"
#include "elf/elf_file.h"
#include "host/dmar.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include "../unit/kallsyms_fixtures.h"
#pragma GCC diagnostic pop

#include <lzma.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cstring>

namespace fs = std::filesystem;
using namespace rr;
using bench::measure_against;

namespace {

const char* const kNeedKernel = "the Debian 6.1 kernel is not prepared: run tests/setup/kernel.sh debian-6.1";

// ---- DMAR -------------------------------------------------------------------------------------------------

Bytes synthetic_dmar(unsigned rmrrs) {
  dmar::Table t;
  t.revision = 1;
  t.oem_id = "BENCH ";
  t.oem_table_id = "RELAXRMR";
  t.creator_id = "RRMR";
  t.host_address_width = 46;
  t.flags = 1;
  for (uint16_t seg = 0; seg < 4; ++seg) {
    dmar::Drhd d;
    d.segment = 0;
    d.register_base = 0xfbffc000ull - seg * 0x2000ull;
    d.flags = seg == 3 ? 1 : 0;
    for (uint8_t b = 0; b < 4; ++b)
      d.scopes.push_back(dmar::make_scope(dmar::ScopeType::bridge, static_cast<uint8_t>(seg * 0x20), {{static_cast<uint8_t>(b + 1), 0}}));
    t.drhds.push_back(std::move(d));
  }
  for (unsigned i = 0; i < rmrrs; ++i) {
    dmar::Rmrr r;
    r.base = 0xbdf6e000ull + i * 0x10000ull;
    r.limit = r.base + 0xffff;
    // An HP-style RMRR: a device behind a root port, and a USB controller on the root bus.
    r.scopes.push_back(
        dmar::make_scope(dmar::ScopeType::endpoint, 0, {{static_cast<uint8_t>(1 + i % 8), 0}, {0, static_cast<uint8_t>(i % 4)}}));
    r.scopes.push_back(dmar::make_scope(dmar::ScopeType::endpoint, 0, {{0x1d, 0}}));
    t.rmrrs.push_back(std::move(r));
  }
  return dmar::encode(t);
}

void dmar_case(benchmark::State& state, const Bytes& table, int batch) {
  Bytes copy(table.size());
  size_t rmrrs = 0;
  auto decode = [&] {
    auto t = dmar::decode(ByteView(table.data(), table.size()));
    if (!t) std::abort();
    rmrrs = t->rmrrs.size();
    benchmark::DoNotOptimize(t->rmrrs.data());
  };
  auto copy_bytes = [&] {
    std::memcpy(copy.data(), table.data(), table.size());
    benchmark::DoNotOptimize(copy.data());
    benchmark::ClobberMemory();
  };
  measure_against(state, fmt::format("memcpy of the {} bytes", table.size()), decode, copy_bytes, batch);
  state.counters["bytes"] = static_cast<double>(table.size());
  state.counters["rmrrs"] = static_cast<double>(rmrrs);
}

void BM_DmarDecodeFirmware(benchmark::State& state) {
  // The largest real tables of the fixtures, one after the other.
  std::vector<Bytes> tables;
  for (const char* name : {"dell-poweredge-r820.dat", "hp-proliant-dl360-g7.dat", "asus-q325uar.dat"}) {
    auto b = read_file_bytes(fs::path(RELAX_RMRR_FIXTURES) / "dmar" / name);
    if (!b) return bench::skip(state, b.error().message);
    tables.push_back(std::move(*b));
  }
  size_t total = 0;
  for (const auto& t : tables) total += t.size();
  Bytes copy(total);
  auto decode = [&] {
    for (const auto& t : tables) {
      auto d = dmar::decode(ByteView(t.data(), t.size()));
      if (!d) std::abort();
      benchmark::DoNotOptimize(d->drhds.data());
    }
  };
  auto copy_bytes = [&] {
    size_t at = 0;
    for (const auto& t : tables) {
      std::memcpy(copy.data() + at, t.data(), t.size());
      at += t.size();
    }
    benchmark::DoNotOptimize(copy.data());
    benchmark::ClobberMemory();
  };
  measure_against(state, fmt::format("memcpy of the {} bytes", total), decode, copy_bytes, 200);
  state.counters["tables"] = static_cast<double>(tables.size());
}

void BM_DmarDecodeSynthetic256(benchmark::State& state) {
  static const Bytes table = synthetic_dmar(256);
  dmar_case(state, table, 20);
}

// ---- kallsyms and System.map -----------------------------------------------------------------------------

// A kallsyms-shaped file for machines without the Debian 6.1 dump: ascending vmlinux text and data symbols,
// some clones and duplicate statics, modules last.
fs::path synthetic_kallsyms(size_t lines) {
  fs::path p = fs::temp_directory_path() / fmt::format("relax-rmrr-bench-kallsyms-{}-{}", getpid(), lines);
  std::string text;
  text.reserve(lines * 48);
  uint64_t addr = 0xffffffff81000000ull;
  text += fmt::format("{:016x} T _text\n", addr);
  for (size_t i = 1; i < lines; ++i) {
    addr += 0x40 + (i % 7) * 0x10;
    if (i > lines * 9 / 10) {
      text += fmt::format("{:016x} t mod_fn_{}\t[mod{}]\n", 0xffffffffc0000000ull + i * 0x40, i, i % 40);
    } else if (i % 50 == 0) {
      text += fmt::format("{:016x} t subsystem_helper_{}.cold\n", addr, i - 1);
    } else if (i % 97 == 0) {
      text += fmt::format("{:016x} t __func__.{}\n", addr, i % 13);
    } else if (i % 31 == 0) {
      text += fmt::format("{:016x} t dup_static_{}\n", addr, i % 11);
    } else {
      text += fmt::format("{:016x} {} subsystem_helper_{}\n", addr, (i % 3 == 0) ? 'T' : 't', i);
    }
  }
  if (!write_file_text(p, text)) return {};
  return p;
}

// RELAX_RMRR_BENCH_KALLSYMS, else the Debian 6.1 dump, else a synthetic 100k-line file (removed at exit).
bool g_kallsyms_synthetic = false;
fs::path kallsyms_file() {
  static const fs::path p = []() -> fs::path {
    if (const char* e = std::getenv("RELAX_RMRR_BENCH_KALLSYMS"); e && *e) return e;
    if (fs::path k = bench::kernel_file("KALLSYMS"); !k.empty()) return k;
    g_kallsyms_synthetic = true;
    return synthetic_kallsyms(100000);
  }();
  return p;
}

// System.map lines from a kallsyms dump: the same "address type name" lines, sorted, without modules.
fs::path system_map_file() {
  static const fs::path p = []() -> fs::path {
    fs::path k = kallsyms_file();
    if (k.empty()) return {};
    auto text = read_file_text(k);
    if (!text) return {};
    std::vector<std::string> lines;
    for (const auto& line : split_lines(*text))
      if (!line.empty() && line.find('[') == std::string::npos) lines.push_back(line);
    std::sort(lines.begin(), lines.end());
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    fs::path to = fs::temp_directory_path() / fmt::format("relax-rmrr-bench-System.map-{}", getpid());
    if (!write_file_text(to, out)) return {};
    return to;
  }();
  return p;
}

template <typename Parse>
void symbols_case(benchmark::State& state, const fs::path& path, Parse&& parse) {
  if (path.empty()) return bench::skip(state, kNeedKernel);
  size_t symbols = 0;
  auto op = [&] {
    auto t = parse(path);
    if (!t) std::abort();
    symbols = t->size();
    benchmark::DoNotOptimize(t->first("intel_iommu_attach_device"));
  };
  auto read = [&] {
    auto text = read_file_text(path);
    if (!text) std::abort();
    benchmark::DoNotOptimize(text->data());
  };
  measure_against(state, "reading the file into memory", op, read);
  state.counters["symbols"] = static_cast<double>(symbols);
}

void BM_KallsymsParse(benchmark::State& state) {
  symbols_case(state, kallsyms_file(), [](const fs::path& p) { return analysis::read_kallsyms(p); });
}

void BM_SystemMapParse(benchmark::State& state) {
  symbols_case(state, system_map_file(), [](const fs::path& p) { return analysis::read_system_map(p); });
}

// ---- bzImage -> ELF ----------------------------------------------------------------------------------------

struct Image {
  Bytes file;
  analysis::SetupHeader setup;
  analysis::Compression compression = analysis::Compression::none;
  ByteView payload;
  size_t elf_size = 0;  // the size the kernel appends after the payload
};

const Image* vmlinuz() {
  static const std::optional<Image> image = []() -> std::optional<Image> {
    fs::path p = bench::kernel_file("VMLINUZ");
    if (p.empty()) return std::nullopt;
    auto bytes = read_file_bytes(p);
    if (!bytes) return std::nullopt;
    Image im;
    im.file = std::move(*bytes);
    auto setup = analysis::parse_setup_header(ByteView(im.file.data(), im.file.size()));
    if (!setup) return std::nullopt;
    im.setup = *setup;
    im.payload = ByteView(im.file.data() + setup->code_offset + setup->payload_offset, setup->payload_length);
    auto c = analysis::detect_compression(im.payload);
    if (!c) return std::nullopt;
    im.compression = *c;
    uint32_t size_le = 0;
    std::memcpy(&size_le, im.payload.data() + im.payload.size() - 4, 4);
    im.elf_size = size_le;
    return im;
  }();
  return image ? &*image : nullptr;
}

// The raw library, no growth strategy, no cap, no checks beyond "it worked": the floor for extract_vmlinux.
bool raw_decompress(const Image& im, Bytes& out) {
  out.resize(im.elf_size);
  switch (im.compression) {
    case analysis::Compression::xz: {
      lzma_stream s = LZMA_STREAM_INIT;
      if (lzma_stream_decoder(&s, UINT64_MAX, 0) != LZMA_OK) return false;
      s.next_in = im.payload.data();
      s.avail_in = im.payload.size() - 4;
      s.next_out = out.data();
      s.avail_out = out.size();
      lzma_ret rc = lzma_code(&s, LZMA_FINISH);
      lzma_end(&s);
      return rc == LZMA_STREAM_END;
    }
    case analysis::Compression::gzip: {
      z_stream s{};
      if (inflateInit2(&s, 16 + MAX_WBITS) != Z_OK) return false;
      s.next_in = const_cast<Bytef*>(im.payload.data());
      s.avail_in = static_cast<uInt>(im.payload.size());
      s.next_out = out.data();
      s.avail_out = static_cast<uInt>(out.size());
      int rc = inflate(&s, Z_FINISH);
      inflateEnd(&s);
      return rc == Z_STREAM_END;
    }
    case analysis::Compression::zstd: {
      ZSTD_DCtx* ctx = ZSTD_createDCtx();
      ZSTD_DCtx_setParameter(ctx, ZSTD_d_windowLogMax, 31);
      ZSTD_inBuffer ib{im.payload.data(), im.payload.size() - 4, 0};
      ZSTD_outBuffer ob{out.data(), out.size(), 0};
      size_t rc = ZSTD_decompressStream(ctx, &ob, &ib);
      ZSTD_freeDCtx(ctx);
      return rc == 0;
    }
    default: return false;
  }
}

void BM_BzImageExtract(benchmark::State& state) {
  const Image* im = vmlinuz();
  if (!im) return bench::skip(state, kNeedKernel);
  Bytes raw;
  if (!raw_decompress(*im, raw))
    return bench::skip(state, fmt::format("no raw-library baseline for {} payloads", analysis::compression_name(im->compression)));
  auto extract = [&] {
    auto k = analysis::extract_vmlinux(ByteView(im->file.data(), im->file.size()));
    if (!k) std::abort();
    benchmark::DoNotOptimize(k->elf.data());
  };
  auto baseline = [&] {
    Bytes out;
    if (!raw_decompress(*im, out)) std::abort();
    benchmark::DoNotOptimize(out.data());
  };
  measure_against(state, fmt::format("raw {} decompression of the payload", analysis::compression_name(im->compression)), extract,
                  baseline);
  state.counters["image_MiB"] = static_cast<double>(im->file.size()) / (1 << 20);
  state.counters["elf_MiB"] = static_cast<double>(im->elf_size) / (1 << 20);
}

// ---- symbols from the image's kallsyms tables --------------------------------------------------------------

// A vmlinuz to decode: a prepared Debian kernel's, or (none prepared) a synthetic one written on first use.
struct KallsymsImage {
  std::string name;
  fs::path vmlinuz;  // empty: the synthetic image
};

fs::path g_synthetic_vmlinuz;
const fs::path& synthetic_vmlinuz() {
  static const fs::path p = []() -> fs::path {
    try {
      // 100k symbols, the kernel's 6.4+ layout; xz as Debian compresses its images.
      test::KallsymsEncoder enc(
          {analysis::KallsymsLayout::num_syms_first, analysis::KallsymsAddressForm::absolute_percpu, 8, test::sample_kallsyms(100000)});
      Bytes image = test::build_bzimage(test::compress_with("xz --check=crc32", test::kallsyms_vmlinux(enc.rodata())));
      fs::path to = fs::temp_directory_path() / fmt::format("relax-rmrr-bench-vmlinuz-{}", getpid());
      if (!write_file_text(to, std::string_view(reinterpret_cast<const char*>(image.data()), image.size()))) return {};
      return to;
    } catch (const std::exception&) {
      return {};
    }
  }();
  g_synthetic_vmlinuz = p;
  return p;
}

fs::path image_path(const KallsymsImage& im) { return im.vmlinuz.empty() ? synthetic_vmlinuz() : im.vmlinuz; }

void image_kallsyms_case(benchmark::State& state, const KallsymsImage& im) {
  fs::path p = image_path(im);
  if (p.empty()) return bench::skip(state, "could not write the synthetic image (xz missing?)");
  size_t symbols = 0;
  std::string layout;
  auto decode = [&] {
    auto k = analysis::read_kernel_image(p);
    if (!k) std::abort();
    auto elf = elf::ElfFile::from_bytes(std::move(k->elf), p.string());
    if (!elf) std::abort();
    auto syms = analysis::decode_image_kallsyms(*elf, p.string());
    if (!syms) std::abort();
    symbols = syms->symbols.size();
    layout = std::string(analysis::layout_name(syms->layout));
    benchmark::DoNotOptimize(syms->symbols.first("intel_iommu_attach_device"));
  };
  auto decompress_only = [&] {
    auto k = analysis::read_kernel_image(p);
    if (!k) std::abort();
    benchmark::DoNotOptimize(k->elf.data());
  };
  measure_against(state, "read_kernel_image alone", decode, decompress_only);
  state.SetLabel(fmt::format("{}, {} layout, baseline: read_kernel_image alone", im.name, layout));
  if (state.counters.count("x_baseline"))
    state.counters["beyond_s"] = state.counters["baseline_s"].value * (state.counters["x_baseline"].value - 1);
  state.counters["symbols"] = static_cast<double>(symbols);
}

void image_kallsyms_decode_case(benchmark::State& state, const KallsymsImage& im) {
  fs::path p = image_path(im);
  if (p.empty()) return bench::skip(state, "could not write the synthetic image (xz missing?)");
  auto k = analysis::read_kernel_image(p);
  if (!k) return bench::skip(state, k.error().message);
  auto elf = elf::ElfFile::from_bytes(std::move(k->elf), p.string());
  if (!elf) return bench::skip(state, elf.error().message);
  auto rodata = elf->section_data(".rodata");
  if (!rodata) return bench::skip(state, rodata.error().message);
  Bytes copy(rodata->size());
  size_t symbols = 0;
  auto decode = [&] {
    auto syms = analysis::decode_image_kallsyms(*elf, p.string());
    if (!syms) std::abort();
    symbols = syms->symbols.size();
    benchmark::DoNotOptimize(syms->symbols.first("intel_iommu_attach_device"));
  };
  auto copy_bytes = [&] {
    std::memcpy(copy.data(), rodata->data(), rodata->size());
    benchmark::DoNotOptimize(copy.data());
    benchmark::ClobberMemory();
  };
  measure_against(state, fmt::format("memcpy of the {} bytes of .rodata", rodata->size()), decode, copy_bytes);
  state.SetLabel(fmt::format("{}, baseline: memcpy of the {} bytes of .rodata", im.name, rodata->size()));
  state.counters["symbols"] = static_cast<double>(symbols);
  state.counters["rodata_MiB"] = static_cast<double>(rodata->size()) / (1 << 20);
}

// One pair of benchmarks per prepared kernel; the synthetic image when none is.
void register_image_kallsyms() {
  std::vector<KallsymsImage> images;
  for (const char* kernel : {"debian-6.1", "debian-6.12", "debian-7.3"})
    if (fs::path p = bench::kernel_file("VMLINUZ", kernel); !p.empty()) images.push_back({kernel, p});
  if (images.empty()) images.push_back({"synthetic-100k", {}});
  for (const auto& im : images) {
    benchmark::RegisterBenchmark(("BM_ImageKallsyms/" + im.name).c_str(), [im](benchmark::State& st) { image_kallsyms_case(st, im); })
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("BM_ImageKallsymsDecodeOnly/" + im.name).c_str(),
                                 [im](benchmark::State& st) { image_kallsyms_decode_case(st, im); })
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  }
}

// ---- BTF ---------------------------------------------------------------------------------------------------

// Raw BTF bytes: RELAX_RMRR_BENCH_BTF, else the .BTF of the Debian 6.1 vmlinux, else the running kernel's.
const std::pair<Bytes, std::string>* btf_bytes() {
  static const std::optional<std::pair<Bytes, std::string>> b = []() -> std::optional<std::pair<Bytes, std::string>> {
    const char* e = std::getenv("RELAX_RMRR_BENCH_BTF");
    if ((!e || !*e) && vmlinuz()) {
      const Image* im = vmlinuz();
      auto k = analysis::extract_vmlinux(ByteView(im->file.data(), im->file.size()));
      if (k) {
        auto elf = elf::ElfFile::from_bytes(std::move(k->elf), "vmlinux");
        if (elf) {
          auto sec = elf->section_data(".BTF");
          if (sec) return std::make_pair(Bytes(sec->data(), sec->data() + sec->size()), std::string("Debian 6.1 vmlinux .BTF"));
        }
      }
    }
    fs::path p = e && *e ? fs::path(e) : fs::path("/sys/kernel/btf/vmlinux");
    auto bytes = read_file_bytes(p);
    if (!bytes) return std::nullopt;
    return std::make_pair(std::move(*bytes), p.string());
  }();
  return b ? &*b : nullptr;
}

void BM_BtfLoad(benchmark::State& state) {
  const auto* b = btf_bytes();
  if (!b) return bench::skip(state, "no BTF: set RELAX_RMRR_BENCH_BTF or prepare the Debian 6.1 kernel");
  const Bytes& raw = b->first;
  Bytes copy(raw.size());
  uint32_t types = 0;
  auto load = [&] {
    auto btf = analysis::Btf::from_bytes(ByteView(raw.data(), raw.size()), "bench");
    if (!btf) std::abort();
    types = btf->type_count();
    benchmark::DoNotOptimize(btf->struct_size("dev_iommu"));
  };
  auto copy_bytes = [&] {
    std::memcpy(copy.data(), raw.data(), raw.size());
    benchmark::DoNotOptimize(copy.data());
    benchmark::ClobberMemory();
  };
  measure_against(state, fmt::format("memcpy of the {} bytes", raw.size()), load, copy_bytes);
  state.counters["types"] = types;
  state.counters["btf_MiB"] = static_cast<double>(raw.size()) / (1 << 20);
}

BENCHMARK(BM_DmarDecodeFirmware)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_DmarDecodeSynthetic256)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_KallsymsParse)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SystemMapParse)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BzImageExtract)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BtfLoad)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  register_image_kallsyms();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::error_code ec;
  if (fs::path p = system_map_file(); !p.empty()) fs::remove(p, ec);
  if (g_kallsyms_synthetic) fs::remove(kallsyms_file(), ec);
  if (!g_synthetic_vmlinuz.empty()) fs::remove(g_synthetic_vmlinuz, ec);
  return 0;
}
