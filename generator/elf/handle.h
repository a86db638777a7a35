// libelf over an open file, for what ElfFile (elf/elf_file.h: the whole file read into memory, read-only) cannot
// do: write a new object, edit one in place, or read the program headers of a file too large to read whole
// (/proc/kcore). The handle ends the Elf* before it closes the descriptor, always in that order.
#pragma once

#include "common/result.h"
#include "common/unique_fd.h"

#include <filesystem>

typedef struct Elf Elf;  // libelf's opaque handle; <libelf.h> stays out of this header

namespace rr::elf {

class ElfHandle {
 public:
  enum class Mode {
    read,  // an existing file, read-only
    read_write,  // an existing file, edited in place (write() saves)
    create,  // a new file (created or truncated, 0644), built with libelf (write() writes it)
  };
  // Errors: the file cannot be opened (missing 3, else failure 1), or libelf cannot start on it (bad input 2).
  static Result<ElfHandle> open(const std::filesystem::path& path, Mode mode);

  ElfHandle(ElfHandle&& o) noexcept;
  ElfHandle& operator=(ElfHandle&& o) noexcept;
  ElfHandle(const ElfHandle&) = delete;
  ElfHandle& operator=(const ElfHandle&) = delete;
  ~ElfHandle();

  Elf* get() const { return elf_; }
  int fd() const { return fd_.get(); }
  const std::filesystem::path& path() const { return path_; }
  // elf_update(ELF_C_WRITE): lays out and writes the file (create, read_write).
  Status write();
  // An Error naming the file, `what` failed, and libelf's last message.
  Error failure(std::string_view what, ExitCode code = ExitCode::failure) const;

 private:
  ElfHandle() = default;
  std::filesystem::path path_;
  UniqueFd fd_;
  Elf* elf_ = nullptr;
};

}  // namespace rr::elf
