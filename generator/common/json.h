// A small JSON value: every read command offers --json, and tests parse it back.
#pragma once

#include "common/result.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace rr {

class Json {
 public:
  using Array = std::vector<Json>;
  // Objects keep insertion order so the output reads like the documented contract.
  using Object = std::vector<std::pair<std::string, Json>>;

  Json() : v_(nullptr) {}
  Json(std::nullptr_t) : v_(nullptr) {}
  Json(bool b) : v_(b) {}
  Json(int i) : v_(static_cast<int64_t>(i)) {}
  Json(long i) : v_(static_cast<int64_t>(i)) {}
  Json(long long i) : v_(static_cast<int64_t>(i)) {}
  Json(unsigned i) : v_(static_cast<uint64_t>(i)) {}
  Json(unsigned long i) : v_(static_cast<uint64_t>(i)) {}
  Json(unsigned long long i) : v_(static_cast<uint64_t>(i)) {}
  Json(double d) : v_(d) {}
  Json(const char* s) : v_(std::string(s)) {}
  Json(std::string s) : v_(std::move(s)) {}
  Json(std::string_view s) : v_(std::string(s)) {}
  Json(Array a) : v_(std::move(a)) {}
  Json(Object o) : v_(std::move(o)) {}

  static Json array() { return Json(Array{}); }
  // A JSON array of strings (notes, names, lists of symbols).
  static Json strings(const std::vector<std::string>& items) {
    Array a(items.begin(), items.end());
    return Json(std::move(a));
  }
  static Json object() { return Json(Object{}); }
  // An array of each(item) for every item of a list: the one loop behind the lists of the --json outputs.
  template <typename Range, typename Each>
  static Json array_of(const Range& items, Each each) {
    Array a;
    for (const auto& item : items) a.push_back(each(item));
    return Json(std::move(a));
  }

  bool is_null() const { return std::holds_alternative<std::nullptr_t>(v_); }
  bool is_bool() const { return std::holds_alternative<bool>(v_); }
  bool is_int() const { return std::holds_alternative<int64_t>(v_) || std::holds_alternative<uint64_t>(v_); }
  bool is_double() const { return std::holds_alternative<double>(v_); }
  bool is_string() const { return std::holds_alternative<std::string>(v_); }
  bool is_array() const { return std::holds_alternative<Array>(v_); }
  bool is_object() const { return std::holds_alternative<Object>(v_); }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const;
  uint64_t as_uint() const;
  double as_double() const;
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const Array& as_array() const { return std::get<Array>(v_); }
  Array& as_array() { return std::get<Array>(v_); }
  const Object& as_object() const { return std::get<Object>(v_); }
  Object& as_object() { return std::get<Object>(v_); }

  // Object access: set() replaces or appends; find() returns nullptr when absent.
  Json& set(std::string key, Json value);
  const Json* find(std::string_view key) const;
  // Throws std::out_of_range when absent: for tests and for keys the code itself wrote.
  const Json& operator[](std::string_view key) const;
  const Json& operator[](size_t index) const { return as_array().at(index); }
  void push(Json value) { as_array().push_back(std::move(value)); }
  size_t size() const;

  std::string dump(int indent = -1) const;
  static Result<Json> parse(std::string_view text);

 private:
  void dump_to(std::string& out, int indent, int depth) const;
  std::variant<std::nullptr_t, bool, int64_t, uint64_t, double, std::string, Array, Object> v_;
};

std::string json_escape(std::string_view s);

}  // namespace rr
