#include "source/tar_reader.h"

#include "common/file.h"
#include "common/unique_fd.h"

#include <bzlib.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <map>
#include <set>

namespace fs = std::filesystem;

namespace rr::source {

std::string_view compression_name(Compression c) {
  switch (c) {
    case Compression::xz: return "xz";
    case Compression::gzip: return "gzip";
    case Compression::zstd: return "zstd";
    case Compression::bzip2: return "bzip2";
    case Compression::none: break;
  }
  return "tar";
}

Result<size_t> MemorySource::read(uint8_t* buf, size_t n) {
  size_t k = std::min(n, bytes_.size() - pos_);
  std::memcpy(buf, bytes_.data() + pos_, k);
  pos_ += k;
  return k;
}

namespace {

constexpr size_t kBlock = 512;
constexpr size_t kInputChunk = size_t{1} << 20;
constexpr uint64_t kMaxExtension = uint64_t{1} << 20;  // a long name or pax header larger than this is not one

// ---- decompressors ----------------------------------------------------------------------------------------

class FileInput {
 public:
  Status open(const fs::path& file) {
    RR_ASSIGN(fd_, open_regular_file(file));  // never a FIFO or a device: no blocking open, no endless stream
    file_ = file;
    buf_.resize(kInputChunk);
    return ok_status();
  }
  // Reads the next chunk when the previous one is used up; false at the end of the file.
  Result<bool> refill() {
    if (pos_ < len_) return true;
    for (;;) {
      ssize_t n = ::read(fd_.get(), buf_.data(), buf_.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return make_error(ExitCode::bad_input, "cannot read {}: {}", file_.string(), std::strerror(errno));
      pos_ = 0;
      len_ = static_cast<size_t>(n);
      return n > 0;
    }
  }
  const uint8_t* data() const { return buf_.data() + pos_; }
  size_t available() const { return len_ - pos_; }
  void consume(size_t n) { pos_ += n; }
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
  fs::path file_;
  std::vector<uint8_t> buf_;
  size_t pos_ = 0, len_ = 0;
};

class PlainSource final : public ByteSource {
 public:
  Status open(const fs::path& f) { return in_.open(f); }
  Result<size_t> read(uint8_t* buf, size_t n) override {
    RR_ASSIGN(bool more, in_.refill());
    if (!more) return size_t{0};
    size_t k = std::min(n, in_.available());
    std::memcpy(buf, in_.data(), k);
    in_.consume(k);
    return k;
  }

 private:
  FileInput in_;
};

Error corrupt(std::string_view format, std::string_view detail) {
  return make_error(ExitCode::bad_input, "the {} data is corrupt ({})", format, detail);
}
Error truncated(std::string_view format) {
  return make_error(ExitCode::bad_input, "the {} data is truncated: the file ends inside the compressed stream", format);
}

class XzSource final : public ByteSource {
 public:
  ~XzSource() override { lzma_end(&s_); }
  Status open(const fs::path& f) {
    RR_CHECK(in_.open(f));
    lzma_ret rc;
#if LZMA_VERSION >= 50040002  // 5.4.0: the multi-threaded decoder
    lzma_mt mt{};
    mt.flags = LZMA_CONCATENATED;
    mt.threads = std::max<uint32_t>(1, lzma_cputhreads());
    mt.timeout = 0;
    uint64_t mem = lzma_physmem();
    mt.memlimit_threading = mem ? mem / 4 : uint64_t{1} << 30;  // xz's default; above it, fewer threads
    mt.memlimit_stop = UINT64_MAX;
    rc = lzma_stream_decoder_mt(&s_, &mt);
#else
    rc = lzma_stream_decoder(&s_, UINT64_MAX, LZMA_CONCATENATED);
#endif
    if (rc != LZMA_OK) return make_error(ExitCode::environment, "liblzma: the decoder cannot start (error {})", static_cast<int>(rc));
    return ok_status();
  }
  Result<size_t> read(uint8_t* buf, size_t n) override {
    if (done_ || n == 0) return size_t{0};
    for (;;) {
      if (!eof_ && s_.avail_in == 0) {
        RR_ASSIGN(bool more, in_.refill());
        eof_ = !more;
        s_.next_in = in_.data();
        s_.avail_in = in_.available();
      }
      s_.next_out = buf;
      s_.avail_out = n;
      size_t before_in = s_.avail_in;
      lzma_ret rc = lzma_code(&s_, eof_ ? LZMA_FINISH : LZMA_RUN);
      in_.consume(before_in - s_.avail_in);
      size_t got = n - s_.avail_out;
      if (rc == LZMA_STREAM_END) done_ = true;
      else if (rc == LZMA_BUF_ERROR) return truncated("xz");
      else if (rc == LZMA_FORMAT_ERROR) return corrupt("xz", "not an xz stream");
      else if (rc == LZMA_DATA_ERROR) return corrupt("xz", "the compressed data does not decode");
      else if (rc == LZMA_OPTIONS_ERROR) return corrupt("xz", "unsupported options");
      else if (rc == LZMA_MEM_ERROR || rc == LZMA_MEMLIMIT_ERROR) return make_error(ExitCode::environment, "xz: out of memory");
      else if (rc != LZMA_OK) return corrupt("xz", fmt::format("liblzma error {}", static_cast<int>(rc)));
      if (got > 0 || done_) return got;
    }
  }

 private:
  FileInput in_;
  lzma_stream s_ = LZMA_STREAM_INIT;
  bool eof_ = false, done_ = false;
};

// At the end of the file a decoder may still hold output that did not fit the last buffer: it is run once more
// with no input, and the data is truncated only when that makes no progress.

// gzip and bzip2 files may hold several compressed streams one after the other (gzip members; pbzip2 and lbzip2
// write one bzip2 stream per block): decoded as one, like gzip -d and bzip2 -d. Anything else after a stream is
// ignored, as by those tools. A subclass decodes one step of the current stream.
class ConcatenatedStreamsSource : public ByteSource {
 public:
  Result<size_t> read(uint8_t* buf, size_t n) override {
    if (done_ || n == 0) return size_t{0};
    for (;;) {
      if (in_.available() == 0 && !eof_) {
        RR_ASSIGN(bool more, in_.refill());
        eof_ = !more;
      }
      if (between_streams_) {
        if (in_.available() == 0 || in_.data()[0] != stream_magic()) {
          done_ = true;
          return size_t{0};
        }
        RR_CHECK(restart());
        between_streams_ = false;
      }
      RR_ASSIGN(Step step, decode(buf, n));
      in_.consume(step.consumed);
      if (step.stream_end) between_streams_ = true;
      if (step.produced > 0) return step.produced;
      if (eof_ && !between_streams_ && step.consumed == 0) return truncated(format());
    }
  }

 protected:
  struct Step {
    size_t consumed = 0, produced = 0;
    bool stream_end = false;
  };
  virtual std::string_view format() const = 0;
  virtual uint8_t stream_magic() const = 0;  // the first byte of a stream
  virtual Status restart() = 0;  // ready for the next stream
  virtual Result<Step> decode(uint8_t* buf, size_t n) = 0;  // from in_.data()/available()
  FileInput in_;

 private:
  bool eof_ = false, done_ = false, between_streams_ = false;
};

class GzipSource final : public ConcatenatedStreamsSource {
 public:
  ~GzipSource() override {
    if (init_) inflateEnd(&s_);
  }
  Status open(const fs::path& f) {
    RR_CHECK(in_.open(f));
    if (inflateInit2(&s_, 16 + MAX_WBITS) != Z_OK) return make_error(ExitCode::environment, "zlib: inflateInit2 failed");
    init_ = true;
    return ok_status();
  }

 private:
  std::string_view format() const override { return "gzip"; }
  uint8_t stream_magic() const override { return 0x1f; }
  Status restart() override {
    inflateReset(&s_);
    return ok_status();
  }
  Result<Step> decode(uint8_t* buf, size_t n) override {
    s_.next_in = const_cast<Bytef*>(in_.data());
    s_.avail_in = static_cast<uInt>(std::min<size_t>(in_.available(), UINT_MAX));
    s_.next_out = buf;
    s_.avail_out = static_cast<uInt>(std::min<size_t>(n, UINT_MAX));
    uInt before_in = s_.avail_in, before_out = s_.avail_out;
    int rc = inflate(&s_, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_BUF_ERROR && rc != Z_STREAM_END) return corrupt("gzip", s_.msg ? s_.msg : fmt::format("zlib error {}", rc));
    return Step{before_in - s_.avail_in, before_out - s_.avail_out, rc == Z_STREAM_END};
  }
  z_stream s_{};
  bool init_ = false;
};

class ZstdSource final : public ByteSource {
 public:
  ~ZstdSource() override { ZSTD_freeDCtx(ctx_); }
  Status open(const fs::path& f) {
    RR_CHECK(in_.open(f));
    ctx_ = ZSTD_createDCtx();
    if (!ctx_) return make_error(ExitCode::environment, "libzstd: cannot create a context");
    ZSTD_DCtx_setParameter(ctx_, ZSTD_d_windowLogMax, 31);  // archives made with --long
    return ok_status();
  }
  Result<size_t> read(uint8_t* buf, size_t n) override {
    if (n == 0) return size_t{0};
    for (;;) {
      if (in_.available() == 0 && !eof_) {
        RR_ASSIGN(bool more, in_.refill());
        eof_ = !more;
      }
      if (eof_ && in_.available() == 0 && frame_done_) return size_t{0};
      ZSTD_inBuffer ib{in_.data(), in_.available(), 0};
      ZSTD_outBuffer ob{buf, n, 0};
      size_t rc = ZSTD_decompressStream(ctx_, &ob, &ib);
      in_.consume(ib.pos);
      if (ZSTD_isError(rc)) return corrupt("zstd", ZSTD_getErrorName(rc));
      frame_done_ = rc == 0;
      if (ob.pos > 0) return ob.pos;
      if (eof_ && ib.pos == 0 && !frame_done_) return truncated("zstd");
    }
  }

 private:
  FileInput in_;
  ZSTD_DCtx* ctx_ = nullptr;
  bool eof_ = false;
  bool frame_done_ = true;  // no frame begun: an empty file is an empty stream
};

class Bzip2Source final : public ConcatenatedStreamsSource {
 public:
  ~Bzip2Source() override {
    if (init_) BZ2_bzDecompressEnd(&s_);
  }
  Status open(const fs::path& f) {
    RR_CHECK(in_.open(f));
    return restart();
  }

 private:
  std::string_view format() const override { return "bzip2"; }
  uint8_t stream_magic() const override { return 'B'; }
  Status restart() override {
    if (init_) BZ2_bzDecompressEnd(&s_);
    s_ = bz_stream{};
    init_ = false;
    if (BZ2_bzDecompressInit(&s_, 0, 0) != BZ_OK) return make_error(ExitCode::environment, "libbz2: init failed");
    init_ = true;
    return ok_status();
  }
  Result<Step> decode(uint8_t* buf, size_t n) override {
    s_.next_in = const_cast<char*>(reinterpret_cast<const char*>(in_.data()));
    s_.avail_in = static_cast<unsigned>(std::min<size_t>(in_.available(), UINT_MAX));
    s_.next_out = reinterpret_cast<char*>(buf);
    s_.avail_out = static_cast<unsigned>(std::min<size_t>(n, UINT_MAX));
    unsigned before_in = s_.avail_in, before_out = s_.avail_out;
    int rc = BZ2_bzDecompress(&s_);
    if (rc != BZ_OK && rc != BZ_STREAM_END) return corrupt("bzip2", fmt::format("libbz2 error {}", rc));
    return Step{before_in - s_.avail_in, before_out - s_.avail_out, rc == BZ_STREAM_END};
  }
  bz_stream s_{};
  bool init_ = false;
};

template <typename T>
Result<std::unique_ptr<ByteSource>> opened(const fs::path& file) {
  auto s = std::make_unique<T>();
  RR_CHECK(s->open(file));
  return std::unique_ptr<ByteSource>(std::move(s));
}

// ---- tar headers ------------------------------------------------------------------------------------------

std::string field(const uint8_t* h, size_t off, size_t len) {
  const char* p = reinterpret_cast<const char*>(h + off);
  return std::string(p, strnlen(p, len));
}

// An octal field (NUL/space terminated, leading spaces allowed), or GNU's base-256 for large values.
std::optional<uint64_t> number(const uint8_t* h, size_t off, size_t len) {
  const uint8_t* p = h + off;
  if (p[0] & 0x80) {
    if (p[0] == 0xff) return std::nullopt;  // negative
    uint64_t v = p[0] & 0x7f;
    for (size_t i = 1; i < len; ++i) {
      if (v >> 55) return std::nullopt;
      v = (v << 8) | p[i];
    }
    return v;
  }
  size_t i = 0;
  while (i < len && p[i] == ' ') ++i;
  uint64_t v = 0;
  for (; i < len && p[i] != 0 && p[i] != ' '; ++i) {
    if (p[i] < '0' || p[i] > '7' || (v >> 60)) return std::nullopt;
    v = v * 8 + (p[i] - '0');
  }
  return v;
}

bool checksum_ok(const uint8_t* h) {
  auto stored = number(h, 148, 8);
  if (!stored) return false;
  uint64_t sum_unsigned = 0;
  int64_t sum_signed = 0;
  for (size_t i = 0; i < kBlock; ++i) {
    uint8_t c = (i >= 148 && i < 156) ? ' ' : h[i];
    sum_unsigned += c;
    sum_signed += static_cast<int8_t>(c);
  }
  return *stored == sum_unsigned || static_cast<int64_t>(*stored) == sum_signed;  // old tars summed signed chars
}

bool all_zero(const uint8_t* h) {
  return std::all_of(h, h + kBlock, [](uint8_t c) { return c == 0; });
}

struct Normalized {
  std::string path;
  bool unsafe = false;
};

Normalized normalize(std::string_view raw) {
  Normalized n;
  if (!raw.empty() && raw[0] == '/') n.unsafe = true;
  if (raw.find('\0') != std::string_view::npos) n.unsafe = true;
  size_t i = 0;
  while (i <= raw.size()) {
    size_t j = raw.find('/', i);
    if (j == std::string_view::npos) j = raw.size();
    std::string_view c = raw.substr(i, j - i);
    if (c == "..") n.unsafe = true;
    if (!c.empty() && c != ".") {
      if (!n.path.empty()) n.path += '/';
      n.path += c;
    }
    i = j + 1;
  }
  return n;
}

std::vector<std::string_view> components(std::string_view p) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    out.push_back(p.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

// pax records: "LEN KEY=VALUE\n", LEN counting the whole record.
struct Pax {
  std::optional<std::string> path, linkpath;
  std::optional<uint64_t> size;
  std::optional<int64_t> mtime;
  bool sparse = false;
};

Result<Pax> parse_pax(std::string_view d, uint64_t at) {
  Pax p;
  auto bad = [&](std::string_view why) {
    return make_error(ExitCode::bad_input, "the pax header at offset {} is malformed ({})", at, why);
  };
  size_t i = 0;
  while (i < d.size()) {
    if (d[i] == '\0') break;  // padding some writers leave
    size_t sp = d.find(' ', i);
    if (sp == std::string_view::npos || sp == i || sp - i > 20) return bad("no record length");
    uint64_t len = 0;
    for (size_t k = i; k < sp; ++k) {
      if (d[k] < '0' || d[k] > '9') return bad("no record length");
      len = len * 10 + static_cast<uint64_t>(d[k] - '0');
    }
    if (len <= sp - i + 1 || len > d.size() - i || d[i + len - 1] != '\n') return bad("a record's length is wrong");
    std::string_view rec = d.substr(sp + 1, i + len - 1 - (sp + 1));
    size_t eq = rec.find('=');
    if (eq == std::string_view::npos || eq == 0) return bad("a record has no key");
    std::string_view key = rec.substr(0, eq), value = rec.substr(eq + 1);
    auto decimal = [&](std::string_view v, bool allow_sign_fraction) -> std::optional<int64_t> {
      bool neg = false;
      if (allow_sign_fraction && !v.empty() && v[0] == '-') {
        neg = true;
        v.remove_prefix(1);
      }
      if (allow_sign_fraction) v = v.substr(0, v.find('.'));
      if (v.empty() || v.size() > 18) return std::nullopt;
      int64_t x = 0;
      for (char c : v) {
        if (c < '0' || c > '9') return std::nullopt;
        x = x * 10 + (c - '0');
      }
      return neg ? -x : x;
    };
    if (key == "path") {
      p.path = value.empty() ? std::nullopt : std::optional<std::string>(value);
    } else if (key == "linkpath") {
      p.linkpath = value.empty() ? std::nullopt : std::optional<std::string>(value);
    } else if (key == "size") {
      if (value.empty()) p.size.reset();
      else if (auto v = decimal(value, false)) p.size = static_cast<uint64_t>(*v);
      else return bad("size is not a number");
    } else if (key == "mtime") {
      if (auto v = decimal(value, true)) p.mtime = *v;
    } else if (key.starts_with("GNU.sparse.")) {
      p.sparse = true;
    }
    i += len;
  }
  return p;
}

}  // namespace

Result<std::unique_ptr<ByteSource>> open_decompressed(const fs::path& file, Compression c) {
  switch (c) {
    case Compression::xz: return opened<XzSource>(file);
    case Compression::gzip: return opened<GzipSource>(file);
    case Compression::zstd: return opened<ZstdSource>(file);
    case Compression::bzip2: return opened<Bzip2Source>(file);
    case Compression::none: break;
  }
  return opened<PlainSource>(file);
}

// ---- TarReader --------------------------------------------------------------------------------------------

TarReader::TarReader(ByteSource& in) : in_(in), buf_(size_t{1} << 20) {}

Result<size_t> TarReader::take(uint8_t* out, size_t n) {
  size_t done = 0;
  while (done < n) {
    if (head_ == tail_) {
      if (eof_) break;
      head_ = tail_ = 0;
      RR_ASSIGN(size_t got, in_.read(buf_.data(), buf_.size()));
      if (got == 0) {
        eof_ = true;
        break;
      }
      tail_ = got;
    }
    size_t k = std::min(n - done, tail_ - head_);
    if (out) std::memcpy(out + done, buf_.data() + head_, k);
    head_ += k;
    done += k;
  }
  pos_ += done;
  return done;
}

Status TarReader::skip(uint64_t n, std::string_view what, std::string_view name) {
  while (n > 0) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(n, buf_.size()));
    if (head_ == tail_ && !eof_) {
      head_ = tail_ = 0;
      RR_ASSIGN(size_t got, in_.read(buf_.data(), buf_.size()));
      if (got == 0) eof_ = true;
      tail_ = got;
    }
    if (head_ == tail_)
      return make_error(ExitCode::bad_input, "the tar archive is truncated: it ends inside {}{} (offset {})", what, name, pos_);
    size_t k = std::min(want, tail_ - head_);
    head_ += k;
    pos_ += k;
    n -= k;
  }
  return ok_status();
}

Result<std::string> TarReader::read_extension(uint64_t size, std::string_view what) {
  if (size > kMaxExtension)
    return make_error(ExitCode::bad_input, "the tar archive has a {} of {} bytes at offset {}: not a tar archive, or damaged", what, size,
                      pos_);
  std::string s(static_cast<size_t>(size), '\0');
  RR_ASSIGN(size_t got, take(reinterpret_cast<uint8_t*>(s.data()), s.size()));
  if (got < s.size()) return make_error(ExitCode::bad_input, "the tar archive is truncated: it ends inside a {} (offset {})", what, pos_);
  uint64_t pad = (kBlock - size % kBlock) % kBlock;
  RR_CHECK(skip(pad, "a ", what));
  return s;
}

Result<std::optional<TarMember>> TarReader::next() {
  if (at_end_) return std::optional<TarMember>{};
  RR_CHECK(skip(data_left_ + padding_left_, "member ", current_));
  data_left_ = padding_left_ = 0;

  std::optional<std::string> long_name, long_link;
  Pax pax;
  bool pending = false;  // an extension header waits for its member
  uint64_t first_header = pos_;
  uint8_t h[kBlock];
  for (;;) {
    uint64_t at = pos_;
    RR_ASSIGN(size_t got, take(h, kBlock));
    if (got == 0 && !pending) {
      at_end_ = true;  // the stream ends between members (no end-of-archive blocks): accepted, like tar
      return std::optional<TarMember>{};
    }
    if (got < kBlock) return make_error(ExitCode::bad_input, "the tar archive is truncated: it ends inside a header (offset {})", at);
    if (all_zero(h)) {
      if (pending)
        return make_error(ExitCode::bad_input, "the tar archive is damaged: an extension header at offset {} has no member", first_header);
      at_end_ = true;
      return std::optional<TarMember>{};
    }
    if (!checksum_ok(h))
      return make_error(ExitCode::bad_input, "not a tar archive, or damaged: the header at offset {} has a wrong checksum", at);
    char type = static_cast<char>(h[156]);
    auto size = number(h, 124, 12);
    if (!size) return make_error(ExitCode::bad_input, "the tar archive is damaged: the header at offset {} has no valid size", at);
    if (type == 'L' || type == 'K') {
      RR_ASSIGN(std::string s, read_extension(*size, type == 'L' ? "long name" : "long link name"));
      s.resize(strnlen(s.c_str(), s.size()));
      (type == 'L' ? long_name : long_link) = std::move(s);
      pending = true;
      continue;
    }
    if (type == 'x' || type == 'g') {
      RR_ASSIGN(std::string s, read_extension(*size, "pax header"));
      RR_ASSIGN(Pax p, parse_pax(s, at));
      if (type == 'x') {  // 'g' (global) records name no member: checked, not applied
        pax = std::move(p);
        pending = true;
      }
      continue;
    }

    TarMember m;
    m.offset = first_header;
    m.typeflag = type;
    bool posix = std::memcmp(h + 257, "ustar\0", 6) == 0;
    if (pax.path) m.raw_path = *pax.path;
    else if (long_name) m.raw_path = *long_name;
    else {
      std::string prefix = posix ? field(h, 345, 155) : std::string();
      m.raw_path = prefix.empty() ? field(h, 0, 100) : prefix + "/" + field(h, 0, 100);
    }
    if (pax.linkpath) m.link = *pax.linkpath;
    else if (long_link) m.link = *long_link;
    else m.link = field(h, 157, 100);
    m.mode = static_cast<uint32_t>(number(h, 100, 8).value_or(0644) & 07777);
    m.mtime = pax.mtime ? *pax.mtime : static_cast<int64_t>(number(h, 136, 12).value_or(0));
    uint64_t data = pax.size ? *pax.size : *size;
    switch (type) {
      case '0':
      case '\0':
      case '7': m.kind = TarMember::Kind::file; break;
      case '5':
      case 'D': m.kind = TarMember::Kind::directory; break;
      case '1': m.kind = TarMember::Kind::hard_link; break;
      case '2': m.kind = TarMember::Kind::symlink; break;
      case '3':
      case '4':
      case '6':
      case 'V':
      case 'S':
      case 'M': m.kind = TarMember::Kind::other; break;
      default: m.kind = TarMember::Kind::file; break;  // POSIX: an unknown type is read as a regular file
    }
    if (pax.sparse) m.kind = TarMember::Kind::other, m.typeflag = 'S';
    // No data follow links, device nodes, FIFOs and ustar directories, whatever their size field says.
    if (type == '1' || type == '2' || type == '3' || type == '4' || type == '5' || type == '6') data = 0;
    if (type == 'S' && h[482]) {  // old GNU sparse: extension blocks follow while their last byte says so
      uint8_t ext[kBlock];
      do {
        RR_ASSIGN(size_t g, take(ext, kBlock));
        if (g < kBlock) return make_error(ExitCode::bad_input, "the tar archive is truncated: it ends inside a header (offset {})", pos_);
      } while (ext[504]);
    }
    m.size = data;
    Normalized n = normalize(m.raw_path);
    m.path = std::move(n.path);
    m.unsafe = n.unsafe;
    current_ = m.raw_path;
    data_left_ = data;
    padding_left_ = (kBlock - data % kBlock) % kBlock;
    return std::optional<TarMember>(std::move(m));
  }
}

Status TarReader::read_data(const std::function<Status(const uint8_t*, size_t)>& sink) {
  while (data_left_ > 0) {
    if (head_ == tail_ && !eof_) {
      head_ = tail_ = 0;
      RR_ASSIGN(size_t got, in_.read(buf_.data(), buf_.size()));
      if (got == 0) eof_ = true;
      tail_ = got;
    }
    if (head_ == tail_)
      return make_error(ExitCode::bad_input, "the tar archive is truncated: it ends inside member {} (offset {})", current_, pos_);
    size_t k = static_cast<size_t>(std::min<uint64_t>(data_left_, tail_ - head_));
    RR_CHECK(sink(buf_.data() + head_, k));
    head_ += k;
    pos_ += k;
    data_left_ -= k;
  }
  return ok_status();
}

// ---- extraction -------------------------------------------------------------------------------------------

namespace {

class IommuExtractor {
 public:
  IommuExtractor(TarReader& r, const fs::path& dest) : r_(r), dest_(dest) {}

  Result<ExtractStats> run() {
    for (;;) {
      RR_ASSIGN(std::optional<TarMember> m, r_.next());
      if (!m) break;
      ++stats_.members;
      RR_CHECK(member(*m));
      if (can_stop()) {
        stats_.stopped_early = true;
        break;
      }
    }
    RR_CHECK(finish());
    stats_.stream_bytes = r_.offset();
    return stats_;
  }

 private:
  struct Root {
    bool makefile = false;  // <root>/Makefile written
    bool driver = false;  // <root>/drivers/iommu/intel/iommu.c or intel-iommu.c written
    bool done = false;  // its drivers/iommu subtree has ended
  };

  Status member(const TarMember& m) {
    if (m.unsafe)
      return Error{fmt::format("the tar archive names a member {}: absolute names and \"..\" are refused", m.raw_path), ExitCode::bad_input,
                   "a Linux source tarball holds relative names inside its tree only"};
    auto c = components(m.path);
    if (c.empty()) return ok_status();  // "./"
    if (!top_) top_ = std::string(c[0]);
    else if (*top_ != c[0]) one_top_ = false;

    // Which root's drivers/iommu holds it: the archive's top ("") or a top-level directory.
    std::optional<std::string> root;
    if (c.size() >= 2 && c[0] == "drivers" && c[1] == "iommu") root = "";
    else if (c.size() >= 3 && c[1] == "drivers" && c[2] == "iommu") root = std::string(c[0]);
    bool makefile = (c.size() == 1 && c[0] == "Makefile") || (c.size() == 2 && c[1] == "Makefile");

    if (inside_ && root != inside_) {
      roots_[*inside_].done = true;
      inside_.reset();
    }
    if (root) inside_ = root;
    if (!root && !makefile) return ok_status();  // skipped by the next next()

    RR_ASSIGN(bool wrote_file, write(m));
    if (!wrote_file) return ok_status();
    if (makefile) roots_[c.size() == 1 ? std::string() : std::string(c[0])].makefile = true;
    if (root) {
      size_t k = root->empty() ? 2 : 3;  // components before the driver's own path
      std::string rest;
      for (size_t i = k; i < c.size(); ++i) rest += (rest.empty() ? "" : "/") + std::string(c[i]);
      if (rest == "intel/iommu.c" || rest == "intel-iommu.c") roots_[*root].driver = true;
    }
    return ok_status();
  }

  bool can_stop() const {
    for (const auto& [name, r] : roots_) {
      if (!r.done || !r.makefile) continue;
      if (name.empty()) return true;  // the caller prefers the top's drivers/iommu whatever follows
      if (r.driver && one_top_ && !roots_.count("")) return true;
    }
    return false;
  }

  Error fail_write(const fs::path& p, int err) {
    return Error{fmt::format("cannot write {}: {}", p.string(), std::strerror(err)), ExitCode::environment,
                 "free space in the cache directory, or choose another (RELAX_RMRR_CACHE)"};
  }

  Status make_parents(const fs::path& p) {
    std::error_code ec;
    fs::create_directories(p.parent_path(), ec);
    if (ec) return fail_write(p.parent_path(), ec.value());
    return ok_status();
  }

  // Makes room for a new entry at p: an earlier member of the same name is replaced, as by tar.
  Status clear(const fs::path& p) {
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) return ok_status();
    if (S_ISDIR(st.st_mode))
      return make_error(ExitCode::bad_input, "the tar archive has a directory and a file both named {}",
                        p.lexically_relative(dest_).string());
    if (::unlink(p.c_str()) != 0) return fail_write(p, errno);
    written_files_.erase(p.lexically_relative(dest_).string());
    return ok_status();
  }

  // True when a regular file was written.
  Result<bool> write(const TarMember& m) {
    fs::path p = dest_ / m.path;
    switch (m.kind) {
      case TarMember::Kind::directory: {
        RR_CHECK(make_parents(p));
        if (::mkdir(p.c_str(), (m.mode & 0777) | 0700) != 0 && errno != EEXIST) return fail_write(p, errno);
        struct stat st;
        if (::lstat(p.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
          return make_error(ExitCode::bad_input, "the tar archive has a file and a directory both named {}", m.path);
        dir_times_.emplace_back(p, m.mtime);
        ++stats_.written;
        return false;
      }
      case TarMember::Kind::file: {
        RR_CHECK(make_parents(p));
        RR_CHECK(clear(p));
        UniqueFd out(::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, m.mode & 0777));
        if (!out) return fail_write(p, errno);
        const int fd = out.get();
        RR_CHECK(r_.read_data([&](const uint8_t* d, size_t n) -> Status {
          while (n > 0) {
            ssize_t w = ::write(fd, d, n);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) return fail_write(p, errno);
            d += w;
            n -= static_cast<size_t>(w);
          }
          return ok_status();
        }));
        timespec times[2] = {{0, UTIME_OMIT}, {static_cast<time_t>(m.mtime), 0}};
        ::futimens(fd, times);
        written_files_.insert(m.path);
        ++stats_.written;
        return true;
      }
      case TarMember::Kind::hard_link: {
        Normalized t = normalize(m.link);
        if (t.unsafe || t.path.empty())
          return Error{fmt::format("the tar archive has a hard link {} to {}, outside the archive: refused", m.raw_path, m.link),
                       ExitCode::bad_input, "a Linux source tarball holds relative names inside its tree only"};
        if (!written_files_.count(t.path))
          return make_error(ExitCode::bad_input, "the tar archive has a hard link {} to {}, which is not extracted", m.raw_path, m.link);
        RR_CHECK(make_parents(p));
        RR_CHECK(clear(p));
        if (::link((dest_ / t.path).c_str(), p.c_str()) != 0) return fail_write(p, errno);
        written_files_.insert(m.path);
        ++stats_.written;
        return true;
      }
      case TarMember::Kind::symlink: {
        // Resolved by name inside the archive; written later as a copy of what it names, if that is extracted.
        const std::string& target = m.link;
        size_t slash = m.path.rfind('/');
        std::string dir = slash == std::string::npos ? std::string() : m.path.substr(0, slash + 1);
        std::optional<std::string> resolved = target.empty() || target[0] == '/' ? std::nullopt : resolve(dir + target);
        if (!resolved)
          return Error{fmt::format("the tar archive has a symbolic link {} to {}, outside the archive: refused", m.raw_path, m.link),
                       ExitCode::bad_input, "a Linux source tarball holds relative names inside its tree only"};
        symlinks_.emplace_back(m.path, *resolved);
        return false;
      }
      case TarMember::Kind::other:
        if (m.typeflag == 'S')
          return make_error(ExitCode::bad_input, "the tar archive stores {} as a sparse file, which is not supported", m.raw_path);
        return false;  // device nodes, FIFOs, volume labels: nothing written
    }
    return false;
  }

  // "a/b/../c" -> "a/c"; nullopt when ".." climbs above the archive's top.
  static std::optional<std::string> resolve(std::string_view p) {
    std::vector<std::string> out;
    for (auto c : components(p)) {
      if (c.empty() || c == ".") continue;
      if (c == "..") {
        if (out.empty()) return std::nullopt;
        out.pop_back();
      } else {
        out.emplace_back(c);
      }
    }
    std::string s;
    for (auto& c : out) s += (s.empty() ? "" : "/") + c;
    return s;
  }

  Status finish() {
    // Symbolic links whose target is an extracted regular file become copies of it (links to links included).
    for (bool progress = true; progress;) {
      progress = false;
      for (auto it = symlinks_.begin(); it != symlinks_.end();) {
        if (!written_files_.count(it->second)) {
          ++it;
          continue;
        }
        fs::path p = dest_ / it->first;
        RR_CHECK(make_parents(p));
        RR_CHECK(clear(p));
        std::error_code ec;
        fs::copy_file(dest_ / it->second, p, ec);
        if (ec) return fail_write(p, ec.value());
        written_files_.insert(it->first);
        ++stats_.written;
        it = symlinks_.erase(it);
        progress = true;
      }
    }
    // Directories' times last, as tar sets them: writing into a directory changes its time.
    for (auto it = dir_times_.rbegin(); it != dir_times_.rend(); ++it) {
      timespec times[2] = {{0, UTIME_OMIT}, {static_cast<time_t>(it->second), 0}};
      ::utimensat(AT_FDCWD, it->first.c_str(), times, AT_SYMLINK_NOFOLLOW);
    }
    return ok_status();
  }

  TarReader& r_;
  fs::path dest_;
  ExtractStats stats_;
  std::map<std::string, Root> roots_;
  std::optional<std::string> inside_;  // the root whose drivers/iommu the last member was in
  std::optional<std::string> top_;  // the first member's first component
  bool one_top_ = true;  // every member so far is under top_
  std::set<std::string> written_files_;
  std::vector<std::pair<std::string, std::string>> symlinks_;  // (path, resolved target)
  std::vector<std::pair<fs::path, int64_t>> dir_times_;
};

}  // namespace

Result<ExtractStats> extract_iommu_source(ByteSource& in, const fs::path& dest) {
  TarReader r(in);
  IommuExtractor x(r, dest);
  return x.run();
}

}  // namespace rr::source
