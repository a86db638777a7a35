// Writing a file so that a failure never destroys what was there: every output of the tool (-o/--output, the
// module and unit files install writes, caches) goes through here.
//
// - An existing path that is not a regular file (a FIFO, a device node, a directory, a symbolic link) is refused,
//   never written through or replaced (bad input, 2).
// - The new content goes to a temporary file in the same directory, is fsync'ed, gets its mode, and is renamed
//   over the path: a reader sees the old file or the new one, and a failure (a full disk) leaves the old one whole.
// - The *_beneath variants walk the relative path below a trusted directory without following any symbolic link
//   in it, so a link planted below /lib/modules or /etc cannot send a write or a removal elsewhere.
#pragma once

#include "common/result.h"
#include "common/unique_fd.h"

#include <sys/types.h>

#include <filesystem>
#include <string_view>

namespace rr {

Status write_file_atomically(const std::filesystem::path& path, std::string_view bytes, mode_t mode = 0644);

// The directory `relative` below `base` (created, mode 0755, when `create`), reached without following a symbolic
// link in `relative` and without leaving `base` (no ".." component, no absolute path). `base` itself is trusted
// (it may be a link, like Debian's /lib -> usr/lib).
Result<UniqueFd> open_directory_beneath(const std::filesystem::path& base, const std::filesystem::path& relative, bool create);

// write_file_atomically for base/relative, its parent directories created beneath base.
Status write_file_beneath(const std::filesystem::path& base, const std::filesystem::path& relative, std::string_view bytes,
                          mode_t mode = 0644);

// Removes base/relative (a file or a symbolic link, never what a link points to). True when something was
// removed, false when nothing was there.
Result<bool> remove_beneath(const std::filesystem::path& base, const std::filesystem::path& relative);

}  // namespace rr
