#include "common/json.h"

#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace rr {

int64_t Json::as_int() const {
  if (auto* u = std::get_if<uint64_t>(&v_)) return static_cast<int64_t>(*u);
  return std::get<int64_t>(v_);
}

uint64_t Json::as_uint() const {
  if (auto* i = std::get_if<int64_t>(&v_)) return static_cast<uint64_t>(*i);
  return std::get<uint64_t>(v_);
}

double Json::as_double() const {
  if (auto* i = std::get_if<int64_t>(&v_)) return static_cast<double>(*i);
  if (auto* u = std::get_if<uint64_t>(&v_)) return static_cast<double>(*u);
  return std::get<double>(v_);
}

Json& Json::set(std::string key, Json value) {
  auto& obj = as_object();
  for (auto& [k, v] : obj) {
    if (k == key) {
      v = std::move(value);
      return v;
    }
  }
  obj.emplace_back(std::move(key), std::move(value));
  return obj.back().second;
}

const Json* Json::find(std::string_view key) const {
  if (!is_object()) return nullptr;
  for (const auto& [k, v] : as_object())
    if (k == key) return &v;
  return nullptr;
}

const Json& Json::operator[](std::string_view key) const {
  if (const Json* j = find(key)) return *j;
  throw std::out_of_range("json: no key " + std::string(key));
}

size_t Json::size() const {
  if (is_array()) return as_array().size();
  if (is_object()) return as_object().size();
  return 0;
}

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          // Firmware strings are not guaranteed UTF-8: escape every non-ASCII byte so output stays valid.
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
  return out;
}

static void newline(std::string& out, int indent, int depth) {
  if (indent < 0) return;
  out.push_back('\n');
  out.append(static_cast<size_t>(indent * depth), ' ');
}

void Json::dump_to(std::string& out, int indent, int depth) const {
  struct Visitor {
    std::string& out;
    int indent, depth;
    void operator()(std::nullptr_t) { out += "null"; }
    void operator()(bool b) { out += b ? "true" : "false"; }
    void operator()(int64_t i) { out += std::to_string(i); }
    void operator()(uint64_t u) { out += std::to_string(u); }
    void operator()(double d) {
      if (!std::isfinite(d)) {
        out += "null";
        return;
      }
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", d);
      out += buf;
    }
    void operator()(const std::string& s) { out += json_escape(s); }
    void operator()(const Array& a) {
      out.push_back('[');
      for (size_t i = 0; i < a.size(); ++i) {
        if (i) out.push_back(',');
        newline(out, indent, depth + 1);
        a[i].dump_to(out, indent, depth + 1);
      }
      if (!a.empty()) newline(out, indent, depth);
      out.push_back(']');
    }
    void operator()(const Object& o) {
      out.push_back('{');
      for (size_t i = 0; i < o.size(); ++i) {
        if (i) out.push_back(',');
        newline(out, indent, depth + 1);
        out += json_escape(o[i].first);
        out += indent < 0 ? ":" : ": ";
        o[i].second.dump_to(out, indent, depth + 1);
      }
      if (!o.empty()) newline(out, indent, depth);
      out.push_back('}');
    }
  };
  std::visit(Visitor{out, indent, depth}, v_);
}

std::string Json::dump(int indent) const {
  std::string out;
  dump_to(out, indent, 0);
  return out;
}

namespace {

class Parser {
 public:
  explicit Parser(std::string_view t) : t_(t) {}

  Result<Json> parse_document() {
    RR_ASSIGN(Json v, value(0));
    skip_ws();
    if (pos_ != t_.size()) return fail("trailing characters");
    return v;
  }

 private:
  Error fail(std::string_view what) const { return make_error(ExitCode::bad_input, "invalid JSON at offset {}: {}", pos_, what); }
  void skip_ws() {
    while (pos_ < t_.size() && (t_[pos_] == ' ' || t_[pos_] == '\n' || t_[pos_] == '\t' || t_[pos_] == '\r')) ++pos_;
  }
  bool eat(char c) {
    skip_ws();
    if (pos_ < t_.size() && t_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool literal(std::string_view word) {
    if (t_.substr(pos_, word.size()) == word) {
      pos_ += word.size();
      return true;
    }
    return false;
  }

  Result<Json> value(int depth) {
    if (depth > 256) return fail("nesting too deep");
    skip_ws();
    if (pos_ >= t_.size()) return fail("unexpected end");
    char c = t_[pos_];
    if (c == '{') return object(depth);
    if (c == '[') return array(depth);
    if (c == '"') {
      RR_ASSIGN(std::string s, string());
      return Json(std::move(s));
    }
    if (literal("true")) return Json(true);
    if (literal("false")) return Json(false);
    if (literal("null")) return Json(nullptr);
    return number();
  }

  Result<Json> object(int depth) {
    ++pos_;
    Json obj = Json::object();
    if (eat('}')) return obj;
    do {
      skip_ws();
      if (pos_ >= t_.size() || t_[pos_] != '"') return fail("expected a key");
      RR_ASSIGN(std::string key, string());
      if (!eat(':')) return fail("expected ':'");
      RR_ASSIGN(Json v, value(depth + 1));
      obj.as_object().emplace_back(std::move(key), std::move(v));
    } while (eat(','));
    if (!eat('}')) return fail("expected '}'");
    return obj;
  }

  Result<Json> array(int depth) {
    ++pos_;
    Json arr = Json::array();
    if (eat(']')) return arr;
    do {
      RR_ASSIGN(Json v, value(depth + 1));
      arr.push(std::move(v));
    } while (eat(','));
    if (!eat(']')) return fail("expected ']'");
    return arr;
  }

  Result<std::string> string() {
    ++pos_;
    std::string out;
    while (pos_ < t_.size()) {
      char c = t_[pos_++];
      if (c == '"') return out;
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (pos_ >= t_.size()) break;
      char e = t_[pos_++];
      switch (e) {
        case '"':
        case '\\':
        case '/': out.push_back(e); break;
        case 'n': out.push_back('\n'); break;
        case 't': out.push_back('\t'); break;
        case 'r': out.push_back('\r'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'u': {
          if (pos_ + 4 > t_.size()) return fail("short \\u escape");
          unsigned cp = 0;
          for (int i = 0; i < 4; ++i) {
            char h = t_[pos_++];
            cp <<= 4;
            if (h >= '0' && h <= '9') cp |= static_cast<unsigned>(h - '0');
            else if (h >= 'a' && h <= 'f') cp |= static_cast<unsigned>(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F') cp |= static_cast<unsigned>(h - 'A' + 10);
            else return fail("bad \\u escape");
          }
          // Our writer only emits \u00XX for raw bytes; read those back as bytes.
          if (cp < 0x100) {
            out.push_back(static_cast<char>(cp));
          } else if (cp < 0x800) {
            out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
          } else {
            out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
          }
          break;
        }
        default: return fail("bad escape");
      }
    }
    return fail("unterminated string");
  }

  Result<Json> number() {
    size_t start = pos_;
    bool negative = false, is_float = false;
    if (t_[pos_] == '-') {
      negative = true;
      ++pos_;
    }
    while (pos_ < t_.size()) {
      char c = t_[pos_];
      if (c >= '0' && c <= '9') ++pos_;
      else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
        is_float = true;
        ++pos_;
      } else break;
    }
    std::string text(t_.substr(start, pos_ - start));
    if (text.empty() || text == "-") return fail("expected a value");
    try {
      if (is_float) return Json(std::stod(text));
      if (negative) return Json(static_cast<long long>(std::stoll(text)));
      return Json(static_cast<unsigned long long>(std::stoull(text)));
    } catch (const std::exception&) {
      return fail("bad number");
    }
  }

  std::string_view t_;
  size_t pos_ = 0;
};

}  // namespace

Result<Json> Json::parse(std::string_view text) { return Parser(text).parse_document(); }

}  // namespace rr
