// vmlinuz → vmlinux (--image, /boot/vmlinuz-R): the x86 setup header, the payload's compression by magic and
// its decompression (gzip, xz, lzma, zstd, lz4, bzip2), capped so a bomb is an Error. The payload found by the
// header is also decompressed directly, whatever the header says about it.
#include "analysis/bzimage.h"
#include "fuzz_util.h"

using namespace rr;
using namespace rr::analysis;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  DecompressOptions options;
  options.max_output = size_t{32} << 20;  // libFuzzer's RSS limit is 2 GiB; a real vmlinux is ~50 MiB
  ByteView in = fuzz::bytes(data, size);
  auto image = extract_vmlinux(in, options);
  if (image.ok()) fuzz::consume(image->elf.size());
  if (auto c = detect_compression(in)) {
    auto out = decompress(in, *c, options);
    if (out.ok()) fuzz::consume(out->size());
  }
  auto setup = parse_setup_header(in);
  if (setup.ok()) fuzz::consume(setup->kernel_version);
  return 0;
}
