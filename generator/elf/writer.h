// Writes an obj::Object as a relocatable x86-64 ELF file with libelf. Symbols are reordered locals-first
// (as ELF requires) and relocations follow; a .rela<name> section is emitted for every section with relocations.
#pragma once

#include "common/result.h"
#include "elf/object.h"

#include <filesystem>

namespace rr::obj {

Status write_object(const obj::Object& object, const std::filesystem::path& path);

}  // namespace rr::obj
