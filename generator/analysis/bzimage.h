// vmlinuz → vmlinux: the x86 boot protocol's setup header locates the compressed payload; the payload is
// decompressed with the matching library. A plain (uncompressed) vmlinux ELF is accepted as is.
#pragma once

#include "common/file.h"
#include "common/result.h"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace rr::analysis {

enum class Compression { none, gzip, xz, lzma, zstd, lz4, bzip2 };
std::string_view compression_name(Compression c);
// By magic bytes; nullopt when none matches.
std::optional<Compression> detect_compression(ByteView data);

struct SetupHeader {
  uint8_t setup_sects = 0;  // 0 means 4 (boot protocol)
  uint16_t version = 0;  // boot protocol, e.g. 0x020f
  size_t code_offset = 0;  // file offset of the protected-mode code: (setup_sects + 1) * 512
  uint32_t payload_offset = 0;  // relative to code_offset (protocol >= 2.08)
  uint32_t payload_length = 0;
  std::string kernel_version;  // the setup's version string, e.g. "6.1.0-56-amd64 (debian-kernel@...) #1 ..."
};

// Error (bad_input) when the "HdrS" magic is absent or the payload lies outside the file.
Result<SetupHeader> parse_setup_header(ByteView file);

struct DecompressOptions {
  size_t max_output = size_t{1} << 30;  // a decompression bomb stops here with an Error
};

// Decompresses one stream; bytes after the end of the stream (the kernel appends the decompressed size) are
// ignored. Error on corrupt or truncated data and when the output would exceed max_output.
Result<Bytes> decompress(ByteView data, Compression c, const DecompressOptions& options = {});

struct KernelImage {
  Compression compression = Compression::none;  // none: the input was a plain ELF
  std::optional<SetupHeader> setup;  // set for a bzImage
  Bytes elf;  // the vmlinux ELF
};

Result<KernelImage> extract_vmlinux(ByteView file, const DecompressOptions& options = {});
Result<KernelImage> read_kernel_image(const std::filesystem::path& path, const DecompressOptions& options = {});

}  // namespace rr::analysis
