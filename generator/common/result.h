// Errors as values: every stage returns Result<T>; the CLI turns an Error into a message and an exit code.
#pragma once

#include "common/fmt_compat.h"

#include <fmt/format.h>

#include <string>
#include <utility>
#include <variant>

namespace rr {

// Exit codes the CLI promises (documented in README).
enum class ExitCode : int {
  ok = 0,
  failure = 1,  // the operation ran and its answer is "no" (e.g. doctor found locked devices)
  bad_input = 2,  // input unreadable, malformed or inconsistent
  missing = 3,  // a required file, package or kernel feature is absent
  refused = 4,  // a safety check refused to go on
  environment = 5,  // the host forbids it (lockdown, permissions)
};

struct Error {
  std::string message;
  ExitCode code = ExitCode::bad_input;
  std::string hint;  // what the user can do about it, may be empty
  int system_errno = 0;  // the errno of the system call that failed, when one did (callers explain EACCES, ENOENT...)

  Error with_context(std::string_view context) const {
    Error e = *this;
    e.message = fmt::format("{}: {}", context, message);
    return e;
  }
};

template <typename... Args>
Error make_error(ExitCode code, format_string<Args...> f, Args&&... args) {
  return Error{fmt::format(f, std::forward<Args>(args)...), code, {}, 0};
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error error) : v_(std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

struct Ok {};
using Status = Result<Ok>;
inline Status ok_status() { return Ok{}; }

}  // namespace rr

#define RR_CONCAT_INNER(a, b) a##b
#define RR_CONCAT(a, b) RR_CONCAT_INNER(a, b)

// RR_ASSIGN(auto x, f()); declares x from a Result, or returns its Error from the enclosing function.
#define RR_ASSIGN(lhs, expr) RR_ASSIGN_IMPL(RR_CONCAT(rr_result_, __LINE__), lhs, expr)
#define RR_ASSIGN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                   \
  if (!tmp.ok()) return tmp.error();   \
  lhs = std::move(tmp).value()

// RR_CHECK(f()); returns the Error of a failed Status/Result from the enclosing function.
#define RR_CHECK(expr)                                           \
  do {                                                           \
    auto rr_check_result_ = (expr);                              \
    if (!rr_check_result_.ok()) return rr_check_result_.error(); \
  } while (0)
