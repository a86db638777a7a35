#include "verify/kernel_text.h"

#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace rr::verify {

KernelText KernelText::from_image(const elf::ElfFile& image, int64_t slide) {
  KernelText t;
  t.origin_ = TextOrigin::image;
  t.image_ = &image;
  t.slide_ = slide;
  t.describe_ = fmt::format("the image {} (code as linked, before boot-time patching)", image.origin());
  return t;
}

Result<KernelText> KernelText::from_kcore(const std::filesystem::path& kcore, const std::filesystem::path& lockdown) {
  auto refuse = [&](std::string why) {
    Error e = make_error(ExitCode::environment, "cannot read the running kernel's code from {}: {}", kcore.string(), why);
    e.hint = "run as root, or verify against the image with --text image";
    return e;
  };
  if (auto l = read_attribute(lockdown); l && l->find("[confidentiality]") != std::string::npos)
    return refuse("the kernel is locked down (lockdown=confidentiality forbids /proc/kcore)");
  auto handle = elf::ElfHandle::open(kcore, elf::ElfHandle::Mode::read);
  if (!handle) {
    int e = handle.error().system_errno;
    if (e == EACCES || e == EPERM)
      return refuse(geteuid() == 0 ? "the kernel refused it to root (locked down, or an LSM forbids /proc/kcore)"
                                   : "permission denied (root is needed)");
    if (e == ENOENT) return refuse("this kernel has no /proc/kcore (CONFIG_PROC_KCORE is off, or /proc is not the host's)");
    if (e != 0) return refuse(std::strerror(e));
    return refuse(fmt::format("not an ELF core ({})", handle.error().message));
  }
  KernelText t;
  t.origin_ = TextOrigin::kcore;
  t.describe_ = fmt::format("{} (the running kernel's code, after boot-time patching)", kcore.string());
  Elf* elf = handle->get();
  size_t n = 0;
  if (elf_getphdrnum(elf, &n) != 0) return refuse(fmt::format("no program headers: {}", elf_errmsg(-1)));
  for (size_t i = 0; i < n; ++i) {
    GElf_Phdr ph;
    if (!gelf_getphdr(elf, static_cast<int>(i), &ph) || ph.p_type != PT_LOAD) continue;
    t.segments_.push_back({ph.p_vaddr, ph.p_offset, ph.p_filesz});
  }
  t.kcore_ = std::move(*handle);
  if (t.segments_.empty()) return refuse("it has no loadable segments");
  return t;
}

std::optional<Bytes> KernelText::read(uint64_t runtime_address, size_t length) const {
  if (origin_ == TextOrigin::image) {
    if (!image_) return std::nullopt;
    auto v = image_->bytes_at(runtime_address - static_cast<uint64_t>(slide_), length);
    if (!v) return std::nullopt;
    return Bytes(v->data(), v->data() + v->size());
  }
  for (const auto& s : segments_) {
    if (runtime_address < s.vaddr || runtime_address - s.vaddr > s.size || length > s.size - (runtime_address - s.vaddr)) continue;
    Bytes out(length);
    off_t at = static_cast<off_t>(s.offset + (runtime_address - s.vaddr));
    size_t done = 0;
    while (done < length) {
      ssize_t r = ::pread(kcore_->fd(), out.data() + done, length - done, at + static_cast<off_t>(done));
      if (r <= 0) return std::nullopt;
      done += static_cast<size_t>(r);
    }
    return out;
  }
  return std::nullopt;
}

}  // namespace rr::verify
