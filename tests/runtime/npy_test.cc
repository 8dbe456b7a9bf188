// .npy reading and writing: round trips, numpy's own files, and refusals
// that name the file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "modelpress/npy.h"
#include "support/test_paths.h"

namespace modelpress {
namespace {

bool Contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(Npy, ReadsNumpyWrittenSamples) {
  auto x = ReadNpy(testing::SampleModelsDir() / "digits_test_img.npy");
  ASSERT_TRUE(x.ok()) << x.status().message();
  EXPECT_EQ(x->dtype, DType::kFloat32);
  EXPECT_EQ(x->shape, (std::vector<int64_t>{360, 1, 8, 8}));
  auto y = ReadNpy(testing::SampleModelsDir() / "digits_test_y.npy");
  ASSERT_TRUE(y.ok()) << y.status().message();
  EXPECT_EQ(y->dtype, DType::kInt64);
  EXPECT_EQ(y->shape, (std::vector<int64_t>{360}));
  for (int64_t i = 0; i < y->size(); ++i) {
    EXPECT_GE(y->as<int64_t>()[i], 0);
    EXPECT_LE(y->as<int64_t>()[i], 9);
  }
}

TEST(Npy, EncodingIsByteIdenticalToNumpy) {
  // numpy wrote the sample file; re-encoding what we read must give its bytes.
  const auto path = testing::SampleModelsDir() / "digits_test_y.npy";
  auto a = ReadNpy(path);
  ASSERT_TRUE(a.ok());
  auto bytes = EncodeNpy(*a);
  ASSERT_TRUE(bytes.ok());
  EXPECT_TRUE(*bytes == testing::ReadFile(path));
}

TEST(Npy, RoundTripsEveryTypeAndScalar) {
  testing::TempDir dir;
  for (DType t : {DType::kFloat32, DType::kFloat64, DType::kInt64, DType::kInt32, DType::kInt8, DType::kUint8, DType::kBool}) {
    for (const std::vector<int64_t>& shape : {std::vector<int64_t>{}, {5}, {2, 3}, {0, 4}}) {
      NpyArray a;
      a.dtype = t;
      a.shape = shape;
      a.data.resize(static_cast<size_t>(ElementCount(shape).value()) * DTypeSize(t));
      for (size_t i = 0; i < a.data.size(); ++i) a.data[i] = static_cast<std::byte>(t == DType::kBool ? i % 2 : i * 7);
      ASSERT_TRUE(WriteNpy(dir / "a.npy", a).ok());
      auto b = ReadNpy(dir / "a.npy");
      ASSERT_TRUE(b.ok()) << b.status().message();
      EXPECT_EQ(b->dtype, t);
      EXPECT_EQ(b->shape, shape);
      EXPECT_EQ(b->data, a.data);
      EXPECT_EQ(testing::ReadFile(dir / "a.npy").size() % 64, a.data.size() % 64);  // header padded to 64
    }
  }
}

TEST(Npy, RefusalsNameTheFile) {
  const std::string good = testing::ReadFile(testing::SampleModelsDir() / "digits_test_y.npy");
  struct Bad {
    std::string bytes;
    StatusCode code;
    const char* says;
  };
  std::string fortran = good, big_endian = good, f16 = good, extra = good + "x";
  fortran.replace(fortran.find("False"), 5, "True ");
  big_endian.replace(big_endian.find("<i8"), 3, ">i8");
  f16.replace(f16.find("<i8"), 3, "<f2");
  // A 2-D Fortran array is refused; the 1-D one above is the same in either order.
  std::string fortran2d = fortran;
  fortran2d.replace(fortran2d.find("(360,)"), 6, "(36,10)");
  const Bad cases[] = {
      {"hello world, not numpy", StatusCode::kCorrupt, "not a .npy"},
      {good.substr(0, good.size() - 8), StatusCode::kCorrupt, "truncated"},
      {good.substr(0, 40), StatusCode::kCorrupt, "truncated"},
      {big_endian, StatusCode::kUnsupported, ">i8"},
      {f16, StatusCode::kUnsupported, "<f2"},
      {fortran2d, StatusCode::kUnsupported, "Fortran"},
      {extra, StatusCode::kCorrupt, "after the array"},
  };
  for (const auto& c : cases) {
    auto r = ParseNpy(c.bytes, "x.npy");
    ASSERT_FALSE(r.ok()) << c.says;
    EXPECT_EQ(r.status().code(), c.code) << r.status().message();
    EXPECT_TRUE(Contains(r.status().message(), "x.npy")) << r.status().message();
    EXPECT_TRUE(Contains(r.status().message(), c.says)) << r.status().message();
  }
  EXPECT_TRUE(ParseNpy(fortran, "x.npy").ok());
  // Reading the same bytes from a file (header first, then the data) refuses
  // them alike, naming the file.
  testing::TempDir dir;
  for (const auto& c : cases) {
    const std::filesystem::path file = dir / "x.npy";
    {
      std::ofstream(file, std::ios::binary) << c.bytes;
    }
    auto r = ReadNpy(file);
    ASSERT_FALSE(r.ok()) << c.says;
    EXPECT_EQ(r.status().code(), c.code) << r.status().message();
    EXPECT_TRUE(Contains(r.status().message(), file.string())) << r.status().message();
    EXPECT_TRUE(Contains(r.status().message(), c.says)) << r.status().message();
  }
  auto missing = ReadNpy("/nonexistent/dir/x.npy");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kIoError);
}

TEST(Npy, ReadsAHeaderLongerThanTheFirstRead) {
  // A version 1.0 file whose header is padded to 6,000 bytes: ReadNpy reads
  // a first prefix, then the whole header, then the data.
  const std::string good = testing::ReadFile(testing::SampleModelsDir() / "digits_test_y.npy");
  const size_t old_len = static_cast<unsigned char>(good[8]) | static_cast<size_t>(static_cast<unsigned char>(good[9])) << 8;
  std::string header = good.substr(10, old_len);
  header.pop_back();  // the newline
  header.append(6000 - 10 - header.size() - 1, ' ');
  header += '\n';
  std::string padded = good.substr(0, 8);
  padded += static_cast<char>(header.size() & 0xff);
  padded += static_cast<char>(header.size() >> 8);
  padded += header + good.substr(10 + old_len);
  testing::TempDir dir;
  {
    std::ofstream(dir / "long.npy", std::ios::binary) << padded;
  }
  auto a = ReadNpy(dir / "long.npy");
  auto b = ReadNpy(testing::SampleModelsDir() / "digits_test_y.npy");
  ASSERT_TRUE(a.ok()) << a.status().message();
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->shape, b->shape);
  EXPECT_EQ(a->data, b->data);
}

TEST(Npy, HugeDeclaredShapeIsRefusedBeforeAllocating) {
  std::string s = testing::ReadFile(testing::SampleModelsDir() / "digits_test_y.npy");
  s.replace(s.find("(360,)"), 6, "(999999999999,)");
  auto r = ParseNpy(s, "big.npy");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Contains(r.status().message(), "truncated")) << r.status().message();
}

}  // namespace
}  // namespace modelpress
