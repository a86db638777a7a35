#include "elf/handle.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace rr::elf {

Result<ElfHandle> ElfHandle::open(const std::filesystem::path& path, Mode mode) {
  if (elf_version(EV_CURRENT) == EV_NONE) return make_error(ExitCode::environment, "libelf is unusable");
  ElfHandle h;
  h.path_ = path;
  int flags = O_CLOEXEC | (mode == Mode::read ? O_RDONLY : mode == Mode::read_write ? O_RDWR : O_WRONLY | O_CREAT | O_TRUNC);
  h.fd_.reset(::open(path.c_str(), flags, 0644));
  if (!h.fd_) {
    int e = errno;
    Error err = make_error(e == ENOENT ? ExitCode::missing : ExitCode::failure, "cannot {} {}: {}",
                           mode == Mode::create ? "create" : "open", path.string(), std::strerror(e));
    err.system_errno = e;
    return err;
  }
  Elf_Cmd cmd = mode == Mode::read ? ELF_C_READ : mode == Mode::read_write ? ELF_C_RDWR : ELF_C_WRITE;
  h.elf_ = elf_begin(h.fd_.get(), cmd, nullptr);
  if (!h.elf_) return h.failure("elf_begin", ExitCode::bad_input);
  if (mode != Mode::create && elf_kind(h.elf_) != ELF_K_ELF) return h.failure("not an ELF file", ExitCode::bad_input);
  return h;
}

ElfHandle::ElfHandle(ElfHandle&& o) noexcept : path_(std::move(o.path_)), fd_(std::move(o.fd_)), elf_(std::exchange(o.elf_, nullptr)) {}

ElfHandle& ElfHandle::operator=(ElfHandle&& o) noexcept {
  if (this != &o) {
    if (elf_) elf_end(elf_);
    path_ = std::move(o.path_);
    elf_ = std::exchange(o.elf_, nullptr);
    fd_ = std::move(o.fd_);
  }
  return *this;
}

ElfHandle::~ElfHandle() {
  if (elf_) elf_end(elf_);  // before fd_ closes
}

Status ElfHandle::write() {
  if (elf_update(elf_, ELF_C_WRITE) < 0) return failure("elf_update");
  return ok_status();
}

Error ElfHandle::failure(std::string_view what, ExitCode code) const {
  const char* m = elf_errmsg(-1);
  return make_error(code, "{}: {}{}{}", path_.string(), what, m ? ": " : "", m ? m : "");
}

}  // namespace rr::elf
