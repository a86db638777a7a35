// vmlinuz → vmlinux: synthetic bzImages around a small ELF in every compression the kernel offers, compressed
// by the command-line tools (gzip, xz, lzma, zstd, lz4 -l, bzip2) as the kernel's build does.
#include "analysis/bzimage.h"
#include "analysis_fixtures.h"
#include "elf/elf_file.h"

#include <gtest/gtest.h>

using namespace rr;
using namespace rr::analysis;

namespace {

struct Tool {
  Compression compression;
  const char* command;
  bool detects_corruption;  // the format carries a checksum
};

const Tool kTools[] = {
    {Compression::gzip, "gzip -9 -n", true},  {Compression::xz, "xz --check=crc32", true}, {Compression::lzma, "lzma -9", false},
    {Compression::zstd, "zstd -q -19", true}, {Compression::lz4, "lz4 -q -l -9", false},   {Compression::bzip2, "bzip2 -9", true},
};

// gtest prints the parameter in test names and failures.
void PrintTo(const Tool& tool, std::ostream* os) { *os << tool.command; }

class EveryCompression : public ::testing::TestWithParam<Tool> {};

TEST_P(EveryCompression, ExtractsTheEmbeddedElf) {
  const Tool& tool = GetParam();
  Bytes elf = test::build_vmlinux(test::to_bytes("BTF!"), true);
  Bytes payload = test::compress_with(tool.command, elf);
  auto detected = detect_compression(ByteView(payload.data(), payload.size()));
  ASSERT_TRUE(detected.has_value());
  EXPECT_EQ(*detected, tool.compression);
  Bytes image = test::build_bzimage(payload);
  auto img = extract_vmlinux(ByteView(image.data(), image.size()));
  ASSERT_TRUE(img.ok()) << img.error().message;
  EXPECT_EQ(img->compression, tool.compression);
  ASSERT_TRUE(img->setup.has_value());
  EXPECT_EQ(img->setup->version, 0x020f);
  EXPECT_EQ(img->setup->code_offset, 4u * 512);
  EXPECT_EQ(img->setup->kernel_version, "6.1.0-99-test (tester@example) #1 SMP");
  EXPECT_EQ(img->elf, elf);
  auto parsed = elf::ElfFile::from_bytes(std::move(img->elf), "x");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_TRUE(parsed->section(".BTF"));
}

TEST_P(EveryCompression, TruncatedPayloadIsAnError) {
  const Tool& tool = GetParam();
  Bytes elf = test::build_vmlinux({}, true);
  Bytes payload = test::compress_with(tool.command, elf);
  for (size_t keep : {payload.size() / 2, payload.size() / 5, size_t{12}}) {
    Bytes cut(payload.begin(), payload.begin() + static_cast<long>(keep));
    auto r = decompress(ByteView(cut.data(), cut.size()), tool.compression);
    ASSERT_FALSE(r.ok()) << compression_name(tool.compression) << " kept " << keep;
    EXPECT_EQ(r.error().code, ExitCode::bad_input);
    EXPECT_NE(r.error().message.find(std::string(compression_name(tool.compression))), std::string::npos) << r.error().message;
  }
}

TEST_P(EveryCompression, CorruptPayloadNeverCrashes) {
  const Tool& tool = GetParam();
  Bytes elf = test::build_vmlinux({}, true);
  Bytes payload = test::compress_with(tool.command, elf);
  int errors = 0;
  for (size_t at = 16; at + 8 < payload.size(); at += payload.size() / 16) {
    Bytes b = payload;
    for (size_t i = 0; i < 4; ++i) b[at + i] ^= 0xa5;
    auto r = decompress(ByteView(b.data(), b.size()), tool.compression);
    if (!r) {
      ++errors;
    } else if (tool.detects_corruption) {
      EXPECT_NE(*r, elf) << "corruption went unnoticed at " << at;
    }
  }
  if (tool.detects_corruption) {
    EXPECT_GT(errors, 0);
  }
}

TEST_P(EveryCompression, SizeCapStopsDecompressionBombs) {
  const Tool& tool = GetParam();
  Bytes zeros(size_t{8} << 20, 0);  // 8 MiB of zeros compress to a few KiB
  Bytes payload = test::compress_with(tool.command, zeros);
  DecompressOptions small;
  small.max_output = size_t{1} << 20;
  auto r = decompress(ByteView(payload.data(), payload.size()), tool.compression, small);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("decompression bomb"), std::string::npos) << r.error().message;
  DecompressOptions enough;
  enough.max_output = size_t{16} << 20;
  auto ok = decompress(ByteView(payload.data(), payload.size()), tool.compression, enough);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->size(), zeros.size());
}

INSTANTIATE_TEST_SUITE_P(Bzimage, EveryCompression, ::testing::ValuesIn(kTools),
                         [](const auto& param_info) { return std::string(compression_name(param_info.param.compression)); });

TEST(Bzimage, Lz4FrameFormatToo) {
  Bytes elf = test::build_vmlinux({}, true);
  Bytes payload = test::compress_with("lz4 -q -9", elf);  // frame format, not legacy
  auto r = decompress(ByteView(payload.data(), payload.size()), Compression::lz4);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, elf);
}

TEST(Bzimage, PlainElfIsAcceptedAsIs) {
  Bytes elf = test::build_vmlinux({}, true);
  auto img = extract_vmlinux(ByteView(elf.data(), elf.size()));
  ASSERT_TRUE(img.ok());
  EXPECT_EQ(img->compression, Compression::none);
  EXPECT_FALSE(img->setup.has_value());
  EXPECT_EQ(img->elf, elf);
  // An uncompressed payload inside a bzImage (CONFIG_KERNEL_UNCOMPRESSED) too.
  Bytes image = test::build_bzimage(elf);
  auto inner = extract_vmlinux(ByteView(image.data(), image.size()));
  ASSERT_TRUE(inner.ok()) << inner.error().message;
  EXPECT_EQ(inner->elf, elf);
}

TEST(Bzimage, BadHeadersAreErrors) {
  Bytes elf = test::build_vmlinux({}, false);
  Bytes payload = test::compress_with("gzip -n", elf);
  Bytes good = test::build_bzimage(payload);

  auto expect_error = [](const Bytes& b, std::string_view needle) {
    auto r = extract_vmlinux(ByteView(b.data(), b.size()));
    ASSERT_FALSE(r.ok()) << needle;
    EXPECT_EQ(r.error().code, ExitCode::bad_input);
    EXPECT_NE(r.error().message.find(needle), std::string::npos) << r.error().message;
  };
  expect_error(test::to_bytes("hello"), "HdrS");
  expect_error(Bytes(), "HdrS");
  {
    Bytes b = good;
    b[0x202] = 'X';
    expect_error(b, "HdrS");
  }
  {
    Bytes b = good;
    uint16_t old = 0x0206;
    std::memcpy(&b[0x206], &old, 2);
    expect_error(b, "older than 2.08");
  }
  {
    Bytes b = good;
    uint32_t huge = 0x7fffffff;
    std::memcpy(&b[0x24c], &huge, 4);
    expect_error(b, "outside");
  }
  {
    Bytes b = good;
    uint32_t off = 0xfffffff0;
    std::memcpy(&b[0x248], &off, 4);
    expect_error(b, "outside");
  }
  {
    Bytes b(good.begin(), good.begin() + static_cast<long>(good.size() - payload.size() / 2 - 64));
    expect_error(b, "outside");  // truncated file
  }
  {
    Bytes b = good;
    size_t at = 4 * 512 + 0x180;
    b[at] = 0x00;  // the gzip magic destroyed
    b[at + 1] = 0x11;
    expect_error(b, "unknown compression");
  }
  {
    // A payload that decompresses fine but is not an ELF.
    Bytes text = test::to_bytes(std::string(5000, 'k'));
    Bytes b = test::build_bzimage(test::compress_with("gzip -n", text));
    expect_error(b, "not an ELF");
  }
}

TEST(Bzimage, SetupSectsZeroMeansFour) {
  Bytes elf = test::build_vmlinux({}, false);
  Bytes image = test::build_bzimage(test::compress_with("gzip -n", elf), 4);
  image[0x1f1] = 0;
  auto h = parse_setup_header(ByteView(image.data(), image.size()));
  ASSERT_TRUE(h.ok()) << h.error().message;
  EXPECT_EQ(h->code_offset, 5u * 512);
}

TEST(Bzimage, DetectsMagics) {
  auto d = [](std::initializer_list<uint8_t> b) {
    Bytes v(b);
    return detect_compression(ByteView(v.data(), v.size()));
  };
  EXPECT_EQ(d({0x1f, 0x8b, 8}), Compression::gzip);
  EXPECT_EQ(d({0xfd, '7', 'z', 'X', 'Z', 0}), Compression::xz);
  EXPECT_EQ(d({0x5d, 0, 0, 0x80}), Compression::lzma);
  EXPECT_EQ(d({0x28, 0xb5, 0x2f, 0xfd}), Compression::zstd);
  EXPECT_EQ(d({0x02, 0x21, 0x4c, 0x18}), Compression::lz4);
  EXPECT_EQ(d({'B', 'Z', 'h', '9'}), Compression::bzip2);
  EXPECT_FALSE(d({0x7f, 'E', 'L', 'F'}).has_value());
  EXPECT_FALSE(d({0x1f}).has_value());
}

TEST(Bzimage, MissingFileIsMissing) {
  auto r = read_kernel_image("/nonexistent/vmlinuz");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ExitCode::missing);
}

// Found by tests/fuzz/bzimage_fuzz (docs/robustness.md): a 29-byte lzma header whose dictionary size (2.1 GiB)
// made liblzma allocate that much before decoding a byte. A stream that needs more memory than any kernel's is a
// corrupt payload, said so, without the allocation.
TEST(Bzimage, LzmaHeaderAskingForGigabytesIsAnError) {
  const Bytes bomb{0x5d, 0x00, 0x00, 0x00, 0x86, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08,
                   0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x65, 0x00, 0x00, 0x00, 0x00, 0x00, 0x58};
  ASSERT_EQ(detect_compression(ByteView(bomb.data(), bomb.size())), Compression::lzma);
  auto r = decompress(ByteView(bomb.data(), bomb.size()), Compression::lzma);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ExitCode::bad_input);
  EXPECT_NE(r.error().message.find("MiB of memory"), std::string::npos) << r.error().message;
  Bytes image = test::build_bzimage(bomb);
  auto img = extract_vmlinux(ByteView(image.data(), image.size()));
  ASSERT_FALSE(img.ok());
  EXPECT_NE(img.error().message.find("lzma payload is corrupt"), std::string::npos) << img.error().message;
}

}  // namespace
