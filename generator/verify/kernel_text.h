// The target kernel's code bytes for the verify step: from the image (vmlinuz -> vmlinux, code as linked) or
// from /proc/kcore on the running kernel (code as the kernel runs it). Addresses in and out are runtime
// addresses as kallsyms gives them; `slide` converts to link addresses for the image.
#pragma once

#include "common/file.h"
#include "common/result.h"
#include "elf/elf_file.h"
#include "elf/handle.h"
#include "verify/text_compare.h"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace rr::verify {

class KernelText {
 public:
  // `slide`: runtime minus link address of the image (KASLR), from kallsyms _text and the image's .text.
  static KernelText from_image(const elf::ElfFile& image, int64_t slide);
  // Error (environment) when /proc/kcore cannot be read: not root, or lockdown=confidentiality.
  static Result<KernelText> from_kcore(const std::filesystem::path& kcore = "/proc/kcore",
                                       const std::filesystem::path& lockdown = "/sys/kernel/security/lockdown");

  TextOrigin origin() const { return origin_; }
  const std::string& describe() const { return describe_; }
  int64_t slide() const { return slide_; }
  // The bytes at a runtime address; nullopt when not all of them are in the image/kcore.
  std::optional<Bytes> read(uint64_t runtime_address, size_t length) const;
  // The address space compare_function works in: link addresses for the image, runtime ones for kcore.
  uint64_t to_compare_space(uint64_t runtime_address) const {
    return origin_ == TextOrigin::image ? runtime_address - static_cast<uint64_t>(slide_) : runtime_address;
  }

 private:
  KernelText() = default;
  TextOrigin origin_ = TextOrigin::image;
  std::string describe_;
  int64_t slide_ = 0;
  const elf::ElfFile* image_ = nullptr;
  struct Segment {
    uint64_t vaddr, offset, size;
  };
  std::vector<Segment> segments_;
  std::optional<elf::ElfHandle> kcore_;  // /proc/kcore: program headers through libelf, bytes with pread
};

}  // namespace rr::verify
