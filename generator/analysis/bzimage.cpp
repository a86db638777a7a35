#include "analysis/bzimage.h"

#include <bzlib.h>
#include <lz4.h>
#include <lz4frame.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <climits>
#include <cstring>

namespace rr::analysis {

namespace {

constexpr size_t kChunk = size_t{1} << 20;
constexpr uint32_t kLz4LegacyMagic = 0x184C2102;
constexpr size_t kLz4LegacyBlock = size_t{8} << 20;

bool has_magic(ByteView d, std::initializer_list<uint8_t> magic) {
  if (d.size() < magic.size()) return false;
  return std::equal(magic.begin(), magic.end(), d.data());
}

Error corrupt(Compression c, std::string_view detail) {
  return make_error(ExitCode::bad_input, "{} payload is corrupt: {}", compression_name(c), detail);
}
Error truncated(Compression c) {
  return make_error(ExitCode::bad_input, "{} payload is truncated: the stream ends before its end marker", compression_name(c));
}
Error too_big(Compression c, size_t cap) {
  Error e = make_error(ExitCode::bad_input, "{} payload decompresses to more than {} MiB; refusing (decompression bomb?)",
                       compression_name(c), cap >> 20);
  return e;
}

// Output buffer that grows by chunks and refuses to pass the cap.
class Sink {
 public:
  Sink(size_t cap, size_t hint) : cap_(cap) { out_.reserve(std::min(hint, cap)); }
  // Room for the next write; empty when the cap is reached.
  std::pair<uint8_t*, size_t> room() {
    if (used_ == out_.size()) {
      size_t grow = std::min(std::max(kChunk, out_.size() / 2), cap_ - out_.size());
      if (grow == 0) return {nullptr, 0};
      out_.resize(out_.size() + grow);
    }
    return {out_.data() + used_, out_.size() - used_};
  }
  void commit(size_t n) { used_ += n; }
  bool full() const { return used_ >= cap_; }
  Bytes take() && {
    out_.resize(used_);
    return std::move(out_);
  }

 private:
  Bytes out_;
  size_t used_ = 0;
  size_t cap_;
};

// The kernel appends the decompressed size (u32 LE) after the stream; use it only to size the buffer.
size_t size_hint(ByteView in) {
  if (in.size() < 8) return 0;
  uint32_t v = *in.read<uint32_t>(in.size() - 4);
  return v;
}

Result<Bytes> gunzip(ByteView in, const DecompressOptions& o) {
  z_stream s{};
  if (inflateInit2(&s, 16 + MAX_WBITS) != Z_OK) return make_error(ExitCode::environment, "zlib: inflateInit2 failed");
  struct End {
    z_stream* s;
    ~End() { inflateEnd(s); }
  } end{&s};
  Sink sink(o.max_output, size_hint(in));
  size_t consumed = 0;
  for (;;) {
    auto [buf, len] = sink.room();
    if (len == 0) return too_big(Compression::gzip, o.max_output);
    size_t in_len = std::min<size_t>(in.size() - consumed, UINT_MAX);
    s.next_in = const_cast<Bytef*>(in.data() + consumed);
    s.avail_in = static_cast<uInt>(in_len);
    s.next_out = buf;
    s.avail_out = static_cast<uInt>(std::min<size_t>(len, UINT_MAX));
    uInt out_before = s.avail_out;
    int rc = inflate(&s, Z_NO_FLUSH);
    consumed += in_len - s.avail_in;
    sink.commit(out_before - s.avail_out);
    if (rc == Z_STREAM_END) return std::move(sink).take();
    if (rc == Z_BUF_ERROR && consumed == in.size()) return truncated(Compression::gzip);
    if (rc != Z_OK && rc != Z_BUF_ERROR) return corrupt(Compression::gzip, s.msg ? s.msg : fmt::format("zlib error {}", rc));
  }
}

// The decoder's memory (its dictionary) is sized by the stream's header: a few bytes can ask for gigabytes before
// any data is decoded. Kernels are compressed with 32 MiB (xz) or 64 MiB (lzma -9) dictionaries; a stream that
// needs more than this is not a kernel payload.
constexpr uint64_t kLzmaMemoryLimit = uint64_t{256} << 20;

Result<Bytes> unxz(ByteView in, Compression c, const DecompressOptions& o) {
  lzma_stream s = LZMA_STREAM_INIT;
  lzma_ret init = c == Compression::xz ? lzma_stream_decoder(&s, kLzmaMemoryLimit, 0) : lzma_alone_decoder(&s, kLzmaMemoryLimit);
  if (init != LZMA_OK) return make_error(ExitCode::environment, "liblzma: decoder init failed ({})", static_cast<int>(init));
  struct End {
    lzma_stream* s;
    ~End() { lzma_end(s); }
  } end{&s};
  Sink sink(o.max_output, size_hint(in));
  s.next_in = in.data();
  s.avail_in = in.size();
  for (;;) {
    auto [buf, len] = sink.room();
    if (len == 0) return too_big(c, o.max_output);
    s.next_out = buf;
    s.avail_out = len;
    lzma_ret rc = lzma_code(&s, s.avail_in == 0 ? LZMA_FINISH : LZMA_RUN);
    sink.commit(len - s.avail_out);
    if (rc == LZMA_STREAM_END) return std::move(sink).take();
    if (rc == LZMA_BUF_ERROR) return truncated(c);
    if (rc == LZMA_MEMLIMIT_ERROR)
      return corrupt(c, fmt::format("its header asks for {} MiB of memory to decompress, more than the {} MiB any "
                                    "kernel's needs",
                                    (lzma_memusage(&s) + (1 << 20) - 1) >> 20, kLzmaMemoryLimit >> 20));
    if (rc != LZMA_OK) return corrupt(c, fmt::format("liblzma error {}", static_cast<int>(rc)));
  }
}

Result<Bytes> unzstd(ByteView in, const DecompressOptions& o) {
  ZSTD_DCtx* ctx = ZSTD_createDCtx();
  if (!ctx) return make_error(ExitCode::environment, "libzstd: cannot create a context");
  struct End {
    ZSTD_DCtx* c;
    ~End() { ZSTD_freeDCtx(c); }
  } end{ctx};
  ZSTD_DCtx_setParameter(ctx, ZSTD_d_windowLogMax, 31);  // kernels are compressed with --ultra -22
  Sink sink(o.max_output, size_hint(in));
  ZSTD_inBuffer ib{in.data(), in.size(), 0};
  for (;;) {
    auto [buf, len] = sink.room();
    if (len == 0) return too_big(Compression::zstd, o.max_output);
    ZSTD_outBuffer ob{buf, len, 0};
    size_t rc = ZSTD_decompressStream(ctx, &ob, &ib);
    sink.commit(ob.pos);
    if (ZSTD_isError(rc)) return corrupt(Compression::zstd, ZSTD_getErrorName(rc));
    if (rc == 0) return std::move(sink).take();  // frame complete
    if (ib.pos == ib.size && ob.pos < ob.size) return truncated(Compression::zstd);
  }
}

// The kernel's lz4 is the legacy format (lz4 -l): magic, then blocks of {u32 compressed size, data}, each
// decompressing to at most 8 MiB; the appended decompressed size follows the last block.
Result<Bytes> unlz4_legacy(ByteView in, const DecompressOptions& o) {
  Sink sink(o.max_output, size_hint(in));
  size_t pos = 4;
  bool any = false;
  Bytes block(kLz4LegacyBlock);
  while (in.size() - pos >= 4) {
    uint32_t n = *in.read<uint32_t>(pos);
    if (n == kLz4LegacyMagic) {  // concatenated archives
      pos += 4;
      continue;
    }
    if (any && in.size() - pos == 4) break;  // the size trailer
    pos += 4;
    if (n == 0 || n > in.size() - pos) {
      if (n > in.size() - pos) return truncated(Compression::lz4);
      return corrupt(Compression::lz4, "empty block");
    }
    if (n > static_cast<uint32_t>(LZ4_compressBound(static_cast<int>(kLz4LegacyBlock))))
      return corrupt(Compression::lz4, fmt::format("block of {} bytes is larger than any 8 MiB block compresses to", n));
    int got = LZ4_decompress_safe(reinterpret_cast<const char*>(in.data() + pos), reinterpret_cast<char*>(block.data()),
                                  static_cast<int>(n), static_cast<int>(block.size()));
    if (got < 0) return corrupt(Compression::lz4, fmt::format("block at offset {:#x} does not decode", pos - 4));
    size_t done = 0;
    while (done < static_cast<size_t>(got)) {
      auto [buf, len] = sink.room();
      if (len == 0) return too_big(Compression::lz4, o.max_output);
      size_t k = std::min(len, static_cast<size_t>(got) - done);
      std::memcpy(buf, block.data() + done, k);
      sink.commit(k);
      done += k;
    }
    pos += n;
    any = true;
  }
  if (!any) return truncated(Compression::lz4);
  return std::move(sink).take();
}

Result<Bytes> unlz4_frame(ByteView in, const DecompressOptions& o) {
  LZ4F_dctx* ctx = nullptr;
  if (LZ4F_isError(LZ4F_createDecompressionContext(&ctx, LZ4F_VERSION)))
    return make_error(ExitCode::environment, "liblz4: cannot create a context");
  struct End {
    LZ4F_dctx* c;
    ~End() { LZ4F_freeDecompressionContext(c); }
  } end{ctx};
  Sink sink(o.max_output, size_hint(in));
  size_t pos = 0;
  for (;;) {
    auto [buf, len] = sink.room();
    if (len == 0) return too_big(Compression::lz4, o.max_output);
    size_t out_len = len, in_len = in.size() - pos;
    size_t rc = LZ4F_decompress(ctx, buf, &out_len, in.data() + pos, &in_len, nullptr);
    sink.commit(out_len);
    pos += in_len;
    if (LZ4F_isError(rc)) return corrupt(Compression::lz4, LZ4F_getErrorName(rc));
    if (rc == 0) return std::move(sink).take();
    if (pos == in.size() && out_len == 0) return truncated(Compression::lz4);
  }
}

Result<Bytes> bunzip2(ByteView in, const DecompressOptions& o) {
  bz_stream s{};
  if (BZ2_bzDecompressInit(&s, 0, 0) != BZ_OK) return make_error(ExitCode::environment, "libbz2: init failed");
  struct End {
    bz_stream* s;
    ~End() { BZ2_bzDecompressEnd(s); }
  } end{&s};
  Sink sink(o.max_output, size_hint(in));
  size_t consumed = 0;
  for (;;) {
    auto [buf, len] = sink.room();
    if (len == 0) return too_big(Compression::bzip2, o.max_output);
    size_t in_len = std::min<size_t>(in.size() - consumed, UINT_MAX);
    s.next_in = const_cast<char*>(reinterpret_cast<const char*>(in.data() + consumed));
    s.avail_in = static_cast<unsigned>(in_len);
    s.next_out = reinterpret_cast<char*>(buf);
    s.avail_out = static_cast<unsigned>(std::min<size_t>(len, UINT_MAX));
    unsigned out_before = s.avail_out;
    int rc = BZ2_bzDecompress(&s);
    consumed += in_len - s.avail_in;
    sink.commit(out_before - s.avail_out);
    if (rc == BZ_STREAM_END) return std::move(sink).take();
    if (rc != BZ_OK) return corrupt(Compression::bzip2, fmt::format("libbz2 error {}", rc));
    if (consumed == in.size() && out_before == s.avail_out) return truncated(Compression::bzip2);
  }
}

bool is_elf(ByteView d) { return has_magic(d, {0x7f, 'E', 'L', 'F'}); }

}  // namespace

std::string_view compression_name(Compression c) {
  switch (c) {
    case Compression::none: return "none";
    case Compression::gzip: return "gzip";
    case Compression::xz: return "xz";
    case Compression::lzma: return "lzma";
    case Compression::zstd: return "zstd";
    case Compression::lz4: return "lz4";
    case Compression::bzip2: return "bzip2";
  }
  return "?";
}

std::optional<Compression> detect_compression(ByteView d) {
  if (has_magic(d, {0x1f, 0x8b})) return Compression::gzip;
  if (has_magic(d, {0xfd, '7', 'z', 'X', 'Z', 0x00})) return Compression::xz;
  if (has_magic(d, {0x5d, 0x00, 0x00})) return Compression::lzma;
  if (has_magic(d, {0x28, 0xb5, 0x2f, 0xfd})) return Compression::zstd;
  if (has_magic(d, {0x02, 0x21, 0x4c, 0x18}) || has_magic(d, {0x04, 0x22, 0x4d, 0x18})) return Compression::lz4;
  if (has_magic(d, {'B', 'Z', 'h'})) return Compression::bzip2;
  return std::nullopt;
}

Result<Bytes> decompress(ByteView data, Compression c, const DecompressOptions& o) {
  if (o.max_output == 0) return make_error(ExitCode::bad_input, "decompression size cap is zero");
  switch (c) {
    case Compression::none: return Bytes(data.data(), data.data() + data.size());
    case Compression::gzip: return gunzip(data, o);
    case Compression::xz:
    case Compression::lzma: return unxz(data, c, o);
    case Compression::zstd: return unzstd(data, o);
    case Compression::lz4:
      if (has_magic(data, {0x02, 0x21, 0x4c, 0x18})) return unlz4_legacy(data, o);
      return unlz4_frame(data, o);
    case Compression::bzip2: return bunzip2(data, o);
  }
  return make_error(ExitCode::bad_input, "unknown compression");
}

Result<SetupHeader> parse_setup_header(ByteView f) {
  auto magic = f.string_at(0x202, 4);
  if (magic != "HdrS")
    return make_error(ExitCode::bad_input, "not an x86 bzImage: no \"HdrS\" boot header magic at 0x202{}",
                      f.size() < 0x206 ? " (file too short)" : "");
  SetupHeader h;
  h.setup_sects = *f.read<uint8_t>(0x1f1);
  auto version = f.read<uint16_t>(0x206);
  if (!version) return make_error(ExitCode::bad_input, "bzImage truncated inside its setup header");
  h.version = *version;
  if (h.version < 0x0208)
    return make_error(ExitCode::bad_input, "bzImage boot protocol {}.{:02} is older than 2.08: it does not say where the payload is",
                      h.version >> 8, h.version & 0xff);
  auto po = f.read<uint32_t>(0x248);
  auto pl = f.read<uint32_t>(0x24c);
  if (!po || !pl) return make_error(ExitCode::bad_input, "bzImage truncated inside its setup header");
  h.payload_offset = *po;
  h.payload_length = *pl;
  h.code_offset = (static_cast<size_t>(h.setup_sects == 0 ? 4 : h.setup_sects) + 1) * 512;
  if (h.payload_length == 0 || !f.has(h.code_offset, 0) || !f.has(h.code_offset + h.payload_offset, h.payload_length))
    return make_error(ExitCode::bad_input, "bzImage payload ({:#x} bytes at {:#x}+{:#x}) lies outside the {}-byte file (truncated image?)",
                      h.payload_length, h.code_offset, h.payload_offset, f.size());
  if (auto kv = f.read<uint16_t>(0x20e); kv && *kv != 0) {
    size_t at = size_t{0x200} + *kv;
    std::string s;
    for (size_t i = at; i < f.size() && i < at + 512 && f.data()[i] != 0; ++i) s.push_back(static_cast<char>(f.data()[i]));
    h.kernel_version = s;
  }
  return h;
}

Result<KernelImage> extract_vmlinux(ByteView file, const DecompressOptions& o) {
  KernelImage img;
  if (is_elf(file)) {
    img.elf.assign(file.data(), file.data() + file.size());
    return img;
  }
  RR_ASSIGN(SetupHeader h, parse_setup_header(file));
  ByteView payload = *file.sub(h.code_offset + h.payload_offset, h.payload_length);
  auto c = detect_compression(payload);
  if (!c) {
    if (is_elf(payload)) {
      img.elf.assign(payload.data(), payload.data() + payload.size());
      img.setup = std::move(h);
      return img;
    }
    return make_error(ExitCode::bad_input, "bzImage payload has an unknown compression (first bytes {:02x} {:02x} {:02x} {:02x})",
                      payload.size() > 0 ? payload.data()[0] : 0, payload.size() > 1 ? payload.data()[1] : 0,
                      payload.size() > 2 ? payload.data()[2] : 0, payload.size() > 3 ? payload.data()[3] : 0);
  }
  auto out = decompress(payload, *c, o);
  if (!out) return out.error().with_context("bzImage");
  if (!is_elf(ByteView(out->data(), out->size())))
    return make_error(ExitCode::bad_input, "bzImage {} payload decompressed to {} bytes that are not an ELF vmlinux", compression_name(*c),
                      out->size());
  img.compression = *c;
  img.setup = std::move(h);
  img.elf = std::move(out).value();
  return img;
}

Result<KernelImage> read_kernel_image(const std::filesystem::path& path, const DecompressOptions& o) {
  RR_ASSIGN(Bytes bytes, read_file_bytes(path));
  auto r = extract_vmlinux(ByteView(bytes.data(), bytes.size()), o);
  if (!r) return r.error().with_context(path.string());
  return r;
}

}  // namespace rr::analysis
