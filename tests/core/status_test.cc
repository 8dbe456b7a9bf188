#include <gtest/gtest.h>

#include <cctype>
#include <memory>
#include <set>
#include <string>

#include "modelpress/status.h"

namespace modelpress {
namespace {

constexpr StatusCode kAllCodes[] = {
    StatusCode::kOk,          StatusCode::kInvalidArgument,  StatusCode::kNotFound, StatusCode::kIoError,
    StatusCode::kCorrupt,     StatusCode::kUnsupported,      StatusCode::kPermissionDenied,
    StatusCode::kResourceExhausted, StatusCode::kInternal,
};

Result<int> ParsePositive(int x) {
  if (x <= 0) return InvalidArgument("value " + std::to_string(x) + " is not positive");
  return x;
}

Status CheckPositive(int x) { return ParsePositive(x).status(); }

Result<int> SumOfTwo(int a, int b) {
  MP_ASSIGN_OR_RETURN(int x, ParsePositive(a));
  MP_ASSIGN_OR_RETURN(const int y, ParsePositive(b));
  return x + y;
}

Status StoreDoubled(int a, int* out) {
  MP_ASSIGN_OR_RETURN(*out, ParsePositive(a));
  *out *= 2;
  return Status::Ok();
}

Status CheckAll(int a, int b, int* steps) {
  MP_RETURN_IF_ERROR(CheckPositive(a));
  ++*steps;
  MP_RETURN_IF_ERROR(CheckPositive(b));
  ++*steps;
  return Status::Ok();
}

Result<std::unique_ptr<int>> MakeBox(int v) {
  if (v < 0) return NotFound("no box for " + std::to_string(v));
  return std::make_unique<int>(v);
}

Result<int> Unbox(int v) {
  MP_ASSIGN_OR_RETURN(std::unique_ptr<int> box, MakeBox(v));
  return *box + 1;
}

TEST(StatusTest, DefaultIsOk) {
  const Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kOk);
  EXPECT_TRUE(s.message().empty());
  EXPECT_TRUE(Status::Ok().ok());
}

TEST(StatusTest, FactoriesSetCodeAndMessage) {
  const std::pair<Status, StatusCode> cases[] = {
      {InvalidArgument("m"), StatusCode::kInvalidArgument}, {NotFound("m"), StatusCode::kNotFound},
      {IoError("m"), StatusCode::kIoError},                 {Corrupt("m"), StatusCode::kCorrupt},
      {Unsupported("m"), StatusCode::kUnsupported},         {PermissionDenied("m"), StatusCode::kPermissionDenied},
      {Internal("m"), StatusCode::kInternal},
  };
  for (const auto& [s, code] : cases) {
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(s.code(), code);
    EXPECT_EQ(s.message(), "m");
  }
}

TEST(StatusTest, CodeNamesAreShortDistinctAndLowerCase) {
  std::set<std::string_view> names;
  for (StatusCode c : kAllCodes) {
    const std::string_view name = StatusCodeName(c);
    EXPECT_FALSE(name.empty());
    for (char ch : name) EXPECT_FALSE(std::isupper(static_cast<unsigned char>(ch))) << name;
    names.insert(name);
  }
  EXPECT_EQ(names.size(), std::size(kAllCodes));
  EXPECT_EQ(StatusCodeName(StatusCode::kCorrupt), "corrupt");
}

TEST(StatusTest, WithPrefixPrependsAndKeepsCode) {
  const Status s = Corrupt("tensor 'w' is truncated");
  const Status p = s.WithPrefix("model.onnx");
  EXPECT_EQ(p.code(), StatusCode::kCorrupt);
  EXPECT_EQ(p.message(), "model.onnx: tensor 'w' is truncated");
  EXPECT_EQ(s.message(), "tensor 'w' is truncated");
  EXPECT_EQ(p.WithPrefix("outer").message(), "outer: model.onnx: tensor 'w' is truncated");
}

TEST(StatusTest, WithPrefixLeavesOkAlone) {
  const Status p = Status::Ok().WithPrefix("model.onnx");
  EXPECT_TRUE(p.ok());
  EXPECT_TRUE(p.message().empty());
}

TEST(ResultTest, HoldsValue) {
  Result<std::string> r(std::string("abc"));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.status().ok());
  EXPECT_EQ(r.value(), "abc");
  EXPECT_EQ(*r, "abc");
  EXPECT_EQ(r->size(), 3u);
  r->push_back('d');
  EXPECT_EQ(r.value(), "abcd");
}

TEST(ResultTest, HoldsError) {
  const Result<int> r = IoError("disk on fire");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kIoError);
  EXPECT_EQ(r.status().message(), "disk on fire");
}

TEST(ResultTest, MovesOutMoveOnlyValue) {
  Result<std::unique_ptr<int>> r = MakeBox(4);
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> box = std::move(r).value();
  ASSERT_NE(box, nullptr);
  EXPECT_EQ(*box, 4);
}

TEST(ResultTest, OkStatusWithoutValueBecomesInternalError) {
  Result<int> r(Status::Ok());
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
}

TEST(MacroTest, AssignOrReturnAssignsOnSuccess) {
  auto r = SumOfTwo(2, 3);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*r, 5);
}

TEST(MacroTest, AssignOrReturnPropagatesFirstError) {
  auto first = SumOfTwo(-1, -2);
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(first.status().message(), "value -1 is not positive");
  auto second = SumOfTwo(1, 0);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().message(), "value 0 is not positive");
}

TEST(MacroTest, AssignOrReturnIntoExistingLvalueInStatusFunction) {
  int out = -1;
  EXPECT_TRUE(StoreDoubled(21, &out).ok());
  EXPECT_EQ(out, 42);
  out = -1;
  const Status s = StoreDoubled(0, &out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(out, -1);
}

TEST(MacroTest, AssignOrReturnMovesMoveOnlyValue) {
  EXPECT_EQ(*Unbox(6), 7);
  EXPECT_EQ(Unbox(-1).status().code(), StatusCode::kNotFound);
}

TEST(MacroTest, ReturnIfErrorStopsAtFirstError) {
  int steps = 0;
  EXPECT_TRUE(CheckAll(1, 2, &steps).ok());
  EXPECT_EQ(steps, 2);
  steps = 0;
  const Status s = CheckAll(1, -2, &steps);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "value -2 is not positive");
  EXPECT_EQ(steps, 1);
  steps = 0;
  EXPECT_FALSE(CheckAll(-1, 2, &steps).ok());
  EXPECT_EQ(steps, 0);
}

TEST(MacroTest, ReturnIfErrorEvaluatesOnce) {
  int calls = 0;
  auto run = [&]() -> Status {
    MP_RETURN_IF_ERROR((++calls, Status::Ok()));
    return Status::Ok();
  };
  EXPECT_TRUE(run().ok());
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace modelpress
