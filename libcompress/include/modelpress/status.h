// Error handling for the whole library: every fallible call returns a Status
// or a Result<T>. The library never throws across its API, never prints and
// never exits; the message names the file, tensor or node and what is wrong.
// Memory the system refuses is the one exception: the pack API (pack.h,
// pack_reader.h) reports it as kResourceExhausted, the other stages let
// std::bad_alloc through (from worker threads too, rethrown on the caller's).
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace modelpress {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,   // a caller's option or value is out of range
  kNotFound,          // a file, tensor or node that should exist does not
  kIoError,           // the operating system refused a read or a write
  kCorrupt,           // input bytes are malformed, truncated or inconsistent
  kUnsupported,       // valid input that this version cannot handle
  kPermissionDenied,  // refused for safety, e.g. external data escaping the model folder
  kResourceExhausted, // the system refused memory the work needs
  kInternal,          // a bug in modelpress
};

// Short lower-case name of a code, e.g. "corrupt".
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Returns a copy whose message is "<prefix>: <message>".
  Status WithPrefix(std::string_view prefix) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
inline Status Corrupt(std::string m) { return {StatusCode::kCorrupt, std::move(m)}; }
inline Status Unsupported(std::string m) { return {StatusCode::kUnsupported, std::move(m)}; }
inline Status PermissionDenied(std::string m) { return {StatusCode::kPermissionDenied, std::move(m)}; }
inline Status ResourceExhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

// Either a value or a non-ok Status.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  // An ok Status carries no value: it becomes an internal error rather than a Result that lies.
  Result(Status status)
      : v_(status.ok() ? Status(StatusCode::kInternal, "Result constructed from an ok Status without a value")
                       : std::move(status)) {}

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace modelpress

#define MP_CONCAT_INNER_(a, b) a##b
#define MP_CONCAT_(a, b) MP_CONCAT_INNER_(a, b)

// Returns the Status from the enclosing function when `expr` is not ok.
#define MP_RETURN_IF_ERROR(expr)                    \
  do {                                              \
    ::modelpress::Status mp_status_ = (expr);       \
    if (!mp_status_.ok()) return mp_status_;        \
  } while (0)

// `MP_ASSIGN_OR_RETURN(auto x, MakeX());` declares x from a Result or returns its Status.
#define MP_ASSIGN_OR_RETURN(lhs, expr) MP_ASSIGN_OR_RETURN_IMPL_(MP_CONCAT_(mp_result_, __LINE__), lhs, expr)
#define MP_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()
