// pack then unpack restores ONNX models exactly: sample models, external
// data, typed storage, pruned int8 weights and the conformance corpus.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <cmath>
#include <map>
#include <random>

#include "codec/tensor_codec.h"
#include "container/checksum.h"
#include "container/stream.h"
#include "container/writer.h"
#include "modelpress/onnx_io.h"
#include "modelpress/pack.h"
#include "onnx/skeleton.h"
#include "reader/model_splice.h"
#include "support/model_builder.h"
#include "support/test_paths.h"

namespace modelpress::pack {
namespace {

namespace fs = std::filesystem;
using testing::ReadFile;
using testing::TempDir;

std::string Packed(const TensorView& v) {
  std::string s(v.packed_bytes(), '\0');
  v.CopyPackedTo(std::as_writable_bytes(std::span(s)));
  return s;
}

// Every tensor bit for bit and the graph (without tensor data) the same.
void ExpectSameModel(const fs::path& a, const fs::path& b) {
  auto ma = LoadModel(a);
  auto mb = LoadModel(b);
  ASSERT_TRUE(ma.ok()) << ma.status().message();
  ASSERT_TRUE(mb.ok()) << mb.status().message();
  ASSERT_EQ(ma->tensors().size(), mb->tensors().size());
  for (const auto& e : ma->tensors()) {
    auto va = ma->View(e);
    auto vb = mb->View(e.name);
    ASSERT_EQ(va.ok(), vb.ok()) << e.name;
    if (va.ok()) {
      EXPECT_EQ(Packed(*va), Packed(*vb)) << e.name;
    }
  }
  EXPECT_EQ(ma->proto().graph().node_size(), mb->proto().graph().node_size());
}

// An ONNX model with nothing in its graph.
onnx::ModelProto EmptyModel() {
  onnx::ModelProto p;
  p.set_ir_version(8);
  p.add_opset_import()->set_version(13);
  return p;
}

// Sample model `sample` saved as `path` (its folder created) with every
// tensor of at least 512 bytes in an external data file named `data_file`
// (default: the model's name + ".data").
void SaveWithExternalData(const std::string& sample, const fs::path& path, const std::string& data_file = "") {
  fs::create_directories(path.parent_path());
  auto m = LoadModel(testing::SampleModelsDir() / sample);
  ASSERT_TRUE(m.ok()) << m.status().message();
  SaveOptions so;
  so.external = ExternalData::kAlways;
  so.external_threshold = 512;
  so.data_file = data_file;
  ASSERT_TRUE(SaveModel(*m, path, so).ok());
}

// An ONNX model with one float32 initializer "w" of `elements` and no data.
onnx::ModelProto OneInitializer(int64_t elements) {
  onnx::ModelProto p = EmptyModel();
  onnx::TensorProto* t = p.mutable_graph()->add_initializer();
  t->set_name("w");
  t->set_data_type(onnx::TensorProto::FLOAT);
  t->add_dims(elements);
  return p;
}

// An index entry for float32 tensor `name` of `elements` elements whose
// payload is one raw stream of `payload_bytes` bytes of 7.
PendingTensor FloatTensor(const std::string& name, int64_t elements, size_t payload_bytes) {
  PendingTensor pt;
  pt.name = name;
  pt.dtype = onnx::TensorProto::FLOAT;
  pt.shape = {elements};
  EncodeStream(std::vector<uint8_t>(payload_bytes, 7), {}, &pt.payload);
  return pt;
}

void SetSkeleton(const onnx::ModelProto& p, ArtifactContents* c) {
  const std::string skel = p.SerializeAsString();
  c->skeleton.clear();
  EncodeStream(std::span(reinterpret_cast<const uint8_t*>(skel.data()), skel.size()), {}, &c->skeleton);
}

// Writes the artifact of `c` to `artifact` and unpacks it as `onnx`.
Result<UnpackReport> WriteAndUnpack(const ArtifactContents& c, const fs::path& artifact, const fs::path& onnx) {
  const auto a = SerializeArtifact(c);
  testing::WriteFile(artifact, std::string(a.begin(), a.end()));
  return UnpackModel(artifact, onnx);
}

TEST(ArtifactRoundTrip, SampleModelsAreByteIdentical) {
  TempDir dir;
  int models = 0;
  for (const auto& f : fs::directory_iterator(testing::SampleModelsDir())) {
    if (f.path().extension() != ".onnx") continue;
    SCOPED_TRACE(f.path().string());
    auto r = PackModel(f.path(), dir / "m.mpk");
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_TRUE(r->exact_onnx);
    EXPECT_LT(r->artifact_bytes, fs::file_size(f.path()));
    auto u = UnpackModel(dir / "m.mpk", dir / "m.onnx");
    ASSERT_TRUE(u.ok()) << u.status().message();
    EXPECT_TRUE(u->byte_exact_checked);
    EXPECT_EQ(ReadFile(dir / "m.onnx"), ReadFile(f.path()));
    ++models;
  }
  EXPECT_GE(models, 5);
}

TEST(ArtifactRoundTrip, ExternalDataFilesAreByteIdentical) {
  TempDir dir;
  fs::create_directories(dir / "out");
  ASSERT_NO_FATAL_FAILURE(SaveWithExternalData("resnet_mini.onnx", dir / "in" / "r.onnx"));
  ASSERT_TRUE(fs::exists(dir / "in" / "r.onnx.data"));
  auto r = PackModel(dir / "in" / "r.onnx", dir / "r.mpk");
  ASSERT_TRUE(r.ok()) << r.status().message();
  auto reader = Reader::Open(dir / "r.mpk");
  ASSERT_TRUE(reader.ok());
  ASSERT_EQ(reader->info().files.size(), 1u);
  EXPECT_EQ(reader->info().files[0].name, "r.onnx.data");
  // Every budget and thread count: one tensor held at a time, or many.
  for (const uint64_t budget : {uint64_t{1}, uint64_t{64} << 20}) {
    for (const int threads : {1, 2}) {
      fs::remove_all(dir / "out");
      UnpackOptions uo;
      uo.threads = threads;
      uo.max_buffered_bytes = budget;
      auto u = UnpackModel(dir / "r.mpk", dir / "out" / "r.onnx", uo);
      ASSERT_TRUE(u.ok()) << u.status().message();
      EXPECT_EQ(u->written.size(), 2u);
      EXPECT_EQ(ReadFile(dir / "out" / "r.onnx"), ReadFile(dir / "in" / "r.onnx"));
      EXPECT_EQ(ReadFile(dir / "out" / "r.onnx.data"), ReadFile(dir / "in" / "r.onnx.data"));
    }
  }
  // With no tensor large enough for a payload, nothing reads the data file,
  // yet the model names it: it travels whole, as residue (it was dropped
  // once, and the restored model named a missing file).
  PackOptions none;
  none.min_tensor_bytes = uint64_t{1} << 40;
  r = PackModel(dir / "in" / "r.onnx", dir / "whole.mpk", none);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->tensors.empty());
  fs::remove_all(dir / "out");
  ASSERT_TRUE(UnpackModel(dir / "whole.mpk", dir / "out" / "r.onnx").ok());
  EXPECT_EQ(ReadFile(dir / "out" / "r.onnx"), ReadFile(dir / "in" / "r.onnx"));
  EXPECT_EQ(ReadFile(dir / "out" / "r.onnx.data"), ReadFile(dir / "in" / "r.onnx.data"));
  // A location spelled "./r.onnx.data", valid for ONNX's loaders, is stored
  // in the form unpack accepts; the model keeps its spelling (unpack refused
  // such artifacts once).
  onnx::ModelProto dotted;
  ASSERT_TRUE(dotted.ParseFromString(ReadFile(dir / "in" / "r.onnx")));
  int renamed = 0;
  for (auto& t : *dotted.mutable_graph()->mutable_initializer()) {
    for (auto& kv : *t.mutable_external_data()) {
      if (kv.key() == "location") {
        kv.set_value("./r.onnx.data");
        ++renamed;
      }
    }
  }
  ASSERT_GT(renamed, 0);
  std::string bytes;
  ASSERT_TRUE(dotted.SerializeToString(&bytes));
  testing::WriteFile(dir / "in" / "dot.onnx", bytes);
  r = PackModel(dir / "in" / "dot.onnx", dir / "dot.mpk");
  ASSERT_TRUE(r.ok()) << r.status().message();
  fs::remove_all(dir / "out");
  auto u = UnpackModel(dir / "dot.mpk", dir / "out" / "dot.onnx");
  ASSERT_TRUE(u.ok()) << u.status().message();
  EXPECT_EQ(ReadFile(dir / "out" / "dot.onnx"), bytes);
  EXPECT_EQ(ReadFile(dir / "out" / "r.onnx.data"), ReadFile(dir / "in" / "r.onnx.data"));
}

// Bytes between external tensors (alignment padding) come back in their
// place: unpack once wrote them after the last tensor instead, and refused
// its own output for not matching the packed file.
TEST(ArtifactRoundTrip, GapsBetweenExternalTensorsAreRestored) {
  TempDir dir;
  ASSERT_NO_FATAL_FAILURE(SaveWithExternalData("digits_mlp.onnx", dir / "in" / "m.onnx"));
  ASSERT_TRUE(PackModel(dir / "in" / "m.onnx", dir / "m.mpk").ok());
  auto reader = Reader::Open(dir / "m.mpk");
  ASSERT_TRUE(reader.ok());
  ASSERT_EQ(reader->info().files.size(), 1u);
  // Gaps before the last tensor: the file holds more than its tensors, and
  // its last tensor ends at the end of the file.
  uint64_t covered = 0, last_end = 0;
  for (const TensorInfo& t : reader->tensors()) {
    if (t.storage != static_cast<uint8_t>(StorageKind::kExternal)) continue;
    covered += t.bytes;
    last_end = std::max(last_end, t.external_offset + t.bytes);
  }
  ASSERT_LT(covered, reader->info().files[0].size);
  ASSERT_EQ(last_end, reader->info().files[0].size);
  for (const int threads : {1, 2}) {
    fs::remove_all(dir / "out");
    UnpackOptions uo;
    uo.threads = threads;
    auto u = UnpackModel(dir / "m.mpk", dir / "out" / "m.onnx", uo);
    ASSERT_TRUE(u.ok()) << u.status().message();
    EXPECT_EQ(ReadFile(dir / "out" / "m.onnx"), ReadFile(dir / "in" / "m.onnx"));
    EXPECT_EQ(ReadFile(dir / "out" / "m.onnx.data"), ReadFile(dir / "in" / "m.onnx.data"));
  }
  // An output path that cannot be the model (a folder) fails before any
  // file is written: the data file was once renamed into place first.
  fs::remove_all(dir / "out");
  fs::create_directories(dir / "out" / "m.onnx");
  auto u = UnpackModel(dir / "m.mpk", dir / "out" / "m.onnx");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.status().code(), StatusCode::kIoError) << u.status().message();
  EXPECT_FALSE(fs::exists(dir / "out" / "m.onnx.data"));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir / "out"), fs::directory_iterator()), 1);
}

// External data laid out as other writers lay it out: two files, offsets
// out of initializer order, a tensor without a length, tiny tensors between
// large ones, bytes before the first and after the last tensor, two tensors
// sharing bytes, a file in a subfolder. Every file restores byte for byte,
// whatever is given a payload and however many threads decode.
TEST(ArtifactRoundTrip, ExternalLayoutsRestoreExactly) {
  struct Spec {
    const char* name;
    int64_t elements;
    const char* location;
    uint64_t offset;
    bool length;
  };
  struct Case {
    const char* name;
    std::vector<Spec> tensors;
    std::string trailer;  // appended to every file
  };
  const std::vector<Case> cases = {
      {"two files", {{"a", 1000, "w1.bin", 0, true}, {"b", 3000, "w2.bin", 128, true}, {"c", 500, "w1.bin", 8192, false},
                     {"d", 2000, "w2.bin", 20000, true}}, ""},
      {"unsorted", {{"a", 4000, "w.bin", 40000, true}, {"b", 5, "w.bin", 16010, true}, {"c", 4000, "w.bin", 0, true},
                    {"d", 3, "w.bin", 39990, true}}, ""},
      {"trailer", {{"a", 2000, "w.bin", 64, true}, {"b", 2000, "w.bin", 9000, true}}, std::string(700, 'T')},
      {"shared bytes", {{"a", 2000, "w.bin", 0, true}, {"b", 2000, "w.bin", 0, true}, {"c", 1000, "w.bin", 4000, true}}, ""},
      {"subfolder", {{"a", 2000, "sub/dir/w.bin", 100, true}, {"b", 10, "sub/dir/w.bin", 0, true}}, ""},
  };
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    TempDir dir;
    std::map<std::string, std::string> files;
    onnx::ModelProto p = EmptyModel();
    for (const Spec& t : c.tensors) {
      std::string bytes(static_cast<size_t>(t.elements) * 4, '\0');
      for (size_t k = 0; k < bytes.size(); k += 4) {
        const float v = normal(rng);
        std::memcpy(&bytes[k], &v, 4);
      }
      std::string& f = files[t.location];
      if (f.size() < t.offset + bytes.size()) f.resize(t.offset + bytes.size(), '\0');
      f.replace(t.offset, bytes.size(), bytes);
      onnx::TensorProto* tp = p.mutable_graph()->add_initializer();
      tp->set_name(t.name);
      tp->set_data_type(onnx::TensorProto::FLOAT);
      tp->add_dims(t.elements);
      tp->set_data_location(onnx::TensorProto::EXTERNAL);
      auto add = [&](const std::string& k, const std::string& v) {
        auto* kv = tp->add_external_data();
        kv->set_key(k);
        kv->set_value(v);
      };
      add("location", t.location);
      add("offset", std::to_string(t.offset));
      if (t.length) add("length", std::to_string(bytes.size()));
    }
    fs::create_directories(dir / "in" / "sub" / "dir");
    for (auto& [name, bytes] : files) testing::WriteFile(dir / "in" / name, bytes + c.trailer);
    std::string model;
    ASSERT_TRUE(p.SerializeToString(&model));
    testing::WriteFile(dir / "in" / "m.onnx", model);
    for (const uint64_t min_bytes : {uint64_t{0}, uint64_t{64}, uint64_t{1} << 40}) {
      PackOptions po;
      po.min_tensor_bytes = min_bytes;
      auto r = PackModel(dir / "in" / "m.onnx", dir / "m.mpk", po);
      ASSERT_TRUE(r.ok()) << r.status().message();
      for (const int threads : {1, 2}) {
        fs::remove_all(dir / "out");
        UnpackOptions uo;
        uo.threads = threads;
        uo.max_buffered_bytes = 1;
        auto u = UnpackModel(dir / "m.mpk", dir / "out" / "m.onnx", uo);
        ASSERT_TRUE(u.ok()) << min_bytes << " " << threads << ": " << u.status().message();
        EXPECT_EQ(ReadFile(dir / "out" / "m.onnx"), model);
        for (const auto& [name, bytes] : files) EXPECT_EQ(ReadFile(dir / "out" / name), bytes + c.trailer) << name;
      }
    }
  }
}

// Neither pack nor unpack replaces a file it reads: pack's output may not
// be the model's external data file, and an external file unpack would
// write may not be the artifact (a model whose data file is named 'a.mpk',
// packed to a.mpk and unpacked next to it, overwrote the artifact once).
TEST(ArtifactRoundTrip, OutputsNeverReplaceInputs) {
  TempDir dir;
  fs::create_directories(dir / "out");
  ASSERT_NO_FATAL_FAILURE(SaveWithExternalData("digits_mlp.onnx", dir / "in" / "m.onnx", "a.mpk"));
  const std::string data = ReadFile(dir / "in" / "a.mpk");
  auto r = PackModel(dir / "in" / "m.onnx", dir / "in" / "a.mpk");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().message();
  EXPECT_EQ(ReadFile(dir / "in" / "a.mpk"), data);
  r = PackModel(dir / "in" / "m.onnx", dir / "out" / "a.mpk");
  ASSERT_TRUE(r.ok()) << r.status().message();
  const std::string artifact = ReadFile(dir / "out" / "a.mpk");
  auto u = UnpackModel(dir / "out" / "a.mpk", dir / "out" / "m.onnx");
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.status().message().find("would replace the artifact"), std::string::npos) << u.status().message();
  EXPECT_EQ(ReadFile(dir / "out" / "a.mpk"), artifact);
  EXPECT_FALSE(fs::exists(dir / "out" / "m.onnx"));
  // Elsewhere it restores.
  auto elsewhere = UnpackModel(dir / "out" / "a.mpk", dir / "m.onnx");
  ASSERT_TRUE(elsewhere.ok()) << elsewhere.status().message();
  EXPECT_EQ(ReadFile(dir / "a.mpk"), data);
}

// A tensor larger than a reader accepts by default (4 GiB) is refused by
// pack with kUnsupported before any encoding (it once got as far as an
// artifact that unpack refused). The 5 GiB of external data are a sparse
// file: nothing is read.
TEST(ArtifactRoundTrip, TensorsAReaderWouldRefuseAreRefusedByPack) {
  TempDir dir;
  const uint64_t elements = (uint64_t{5} << 30) / 4;
  {
    const int fd = ::open((dir / "big.bin").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(elements * 4)), 0);
    ::close(fd);
  }
  onnx::ModelProto p = EmptyModel();
  onnx::TensorProto* t = p.mutable_graph()->add_initializer();
  t->set_name("huge");
  t->set_data_type(onnx::TensorProto::FLOAT);
  t->add_dims(static_cast<int64_t>(elements));
  t->set_data_location(onnx::TensorProto::EXTERNAL);
  auto* kv = t->add_external_data();
  kv->set_key("location");
  kv->set_value("big.bin");
  std::string bytes;
  ASSERT_TRUE(p.SerializeToString(&bytes));
  testing::WriteFile(dir / "m.onnx", bytes);
  auto r = PackModel(dir / "m.onnx", dir / "m.mpk");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported) << r.status().message();
  EXPECT_NE(r.status().message().find("'huge'"), std::string::npos) << r.status().message();
  EXPECT_FALSE(fs::exists(dir / "m.mpk"));
}

// A released payload's pages are read again from the file when asked for:
// every tensor decodes to the same bytes before and after.
TEST(ArtifactRoundTrip, ReleasedPayloadsReadAgain) {
  TempDir dir;
  auto r = PackModel(testing::SampleModelsDir() / "transformer_tiny.onnx", dir / "t.mpk");
  ASSERT_TRUE(r.ok()) << r.status().message();
  auto reader = Reader::Open(dir / "t.mpk");
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  ASSERT_FALSE(reader->tensors().empty());
  for (const TensorInfo& t : reader->tensors()) {
    std::vector<std::byte> first(t.bytes), again(t.bytes);
    ASSERT_TRUE(reader->ReadTensor(t, first).ok()) << t.name;
    reader->ReleasePayload(t);
    ASSERT_TRUE(reader->ReadTensor(t, again).ok()) << t.name;
    EXPECT_EQ(first, again) << t.name;
  }
}

// unpack decodes tensors just ahead of writing them: the decoded data it
// holds at once stays within max_buffered_bytes (or one tensor), whatever
// the thread count, and the model still restores byte for byte.
TEST(ArtifactRoundTrip, UnpackHoldsNoMoreDecodedDataThanItsBudget) {
  TempDir dir;
  onnx::ModelProto p = EmptyModel();
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.f, 1.f);
  constexpr int kTensors = 12;
  constexpr uint64_t kTensorBytes = 64 * 1024 * 4;
  for (int k = 0; k < kTensors; ++k) {
    onnx::TensorProto* t = p.mutable_graph()->add_initializer();
    t->set_name("w" + std::to_string(k));
    t->set_data_type(onnx::TensorProto::FLOAT);
    t->add_dims(64);
    t->add_dims(1024);
    std::vector<float> v(64 * 1024);
    for (float& x : v) x = normal(rng);
    t->set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), kTensorBytes));
  }
  auto m = Model::FromProto(p);
  ASSERT_TRUE(m.ok()) << m.status().message();
  ASSERT_TRUE(SaveModel(*m, dir / "m.onnx").ok());
  ASSERT_TRUE(PackModel(dir / "m.onnx", dir / "m.mpk").ok());
  for (const int threads : {1, 2, 4}) {
    for (const uint64_t budget : {uint64_t{1}, 3 * kTensorBytes, uint64_t{64} << 20}) {
      SCOPED_TRACE("threads " + std::to_string(threads) + ", budget " + std::to_string(budget));
      UnpackOptions uo;
      uo.threads = threads;
      uo.max_buffered_bytes = budget;
      auto u = UnpackModel(dir / "m.mpk", dir / "u.onnx", uo);
      ASSERT_TRUE(u.ok()) << u.status().message();
      EXPECT_LE(u->peak_buffered_bytes, std::max(budget, kTensorBytes));
      EXPECT_GE(u->peak_buffered_bytes, kTensorBytes);
      EXPECT_EQ(ReadFile(dir / "u.onnx"), ReadFile(dir / "m.onnx"));
    }
  }
}

TEST(ArtifactRoundTrip, TypedStorageIsRestoredInItsOwnFields) {
  onnx::TensorProto f;
  f.set_name("f");
  f.set_data_type(onnx::TensorProto::FLOAT);
  f.add_dims(64);
  for (int i = 0; i < 64; ++i) f.add_float_data(i % 3 ? 0.25f * static_cast<float>(i) : -0.0f);
  onnx::TensorProto q;
  q.set_name("q");
  q.set_data_type(onnx::TensorProto::INT8);
  q.add_dims(100);
  for (int i = 0; i < 100; ++i) q.add_int32_data(i % 10 ? 0 : (i % 20 ? -100 : 77));
  onnx::TensorProto h;
  h.set_name("h");
  h.set_data_type(onnx::TensorProto::FLOAT16);
  h.add_dims(40);
  for (int i = 0; i < 40; ++i) h.add_int32_data(0x3c00 + i);
  onnx::TensorProto l;
  l.set_name("l");
  l.set_data_type(onnx::TensorProto::INT64);
  l.add_dims(10);
  for (int i = 0; i < 10; ++i) l.add_int64_data(-i * 1000000007LL);
  testing::ModelBuilder b;
  b.Input("x", {1, 64}).Output("y").Node("Identity", {"x"}, {"y"});
  b.Initializer(f).Initializer(q).Initializer(h).Initializer(l);
  auto m = b.Build();
  TempDir dir;
  ASSERT_TRUE(SaveModel(m, dir / "t.onnx").ok());
  auto r = PackModel(dir / "t.onnx", dir / "t.mpk");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->tensors.size(), 4u);
  EXPECT_TRUE(r->exact_onnx);
  ASSERT_TRUE(UnpackModel(dir / "t.mpk", dir / "u.onnx").ok());
  EXPECT_EQ(ReadFile(dir / "u.onnx"), ReadFile(dir / "t.onnx"));
  auto back = LoadModel(dir / "u.onnx");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->FindTensor("q")->proto->int32_data(0), 77);
  EXPECT_EQ(back->FindTensor("q")->proto->int32_data(10), -100);
}

// digits_mlp with 90% of every weight zeroed (smallest magnitudes) and
// quantized to int8, symmetric per tensor, as the pruning and quantization
// stages will produce.
fs::path MakeSparseInt8(const TempDir& dir) {
  auto m = LoadModel(testing::SampleModelsDir() / "digits_mlp.onnx");
  EXPECT_TRUE(m.ok());
  onnx::ModelProto p = m->proto();
  for (auto& t : *p.mutable_graph()->mutable_initializer()) {
    if (t.dims_size() != 2) continue;
    std::vector<float> w(t.raw_data().size() / 4);
    std::memcpy(w.data(), t.raw_data().data(), t.raw_data().size());
    std::vector<float> mag(w.size());
    std::transform(w.begin(), w.end(), mag.begin(), [](float x) { return std::fabs(x); });
    std::nth_element(mag.begin(), mag.begin() + static_cast<long>(mag.size() * 9 / 10), mag.end());
    const float cut = mag[mag.size() * 9 / 10];
    float amax = 0;
    for (float x : w) amax = std::max(amax, std::fabs(x));
    std::string q(w.size(), '\0');
    for (size_t i = 0; i < w.size(); ++i) {
      q[i] = std::fabs(w[i]) < cut ? 0 : static_cast<char>(std::clamp(std::nearbyint(w[i] / amax * 127), -127.f, 127.f));
    }
    t.set_data_type(onnx::TensorProto::INT8);
    t.set_raw_data(q);
  }
  auto sparse = Model::FromProto(p);
  EXPECT_TRUE(sparse.ok());
  EXPECT_TRUE(SaveModel(*sparse, dir / "sparse.onnx").ok());
  return dir / "sparse.onnx";
}

TEST(ArtifactRoundTrip, PrunedInt8WeightsApproachTheOrder0Bound) {
  TempDir dir;
  const fs::path model = MakeSparseInt8(dir);
  auto r = PackModel(model, dir / "s.mpk");
  ASSERT_TRUE(r.ok()) << r.status().message();
  double bound = 0, stored = 0;
  for (const auto& t : r->tensors) {
    if (t.dtype != onnx::TensorProto::INT8) continue;
    EXPECT_NE(t.encoder, Encoder::kWhole) << t.name;
    bound += t.bound_bits / 8;
    stored += static_cast<double>(t.stored_bytes);
  }
  ASSERT_GT(bound, 0);
  // The tensors hold only 30k, 19k and 1k weights, so the two code tables of
  // each (~100 bytes) are a visible share: measured +4.2% at the time of writing.
  EXPECT_LT(stored, bound * 1.06) << "stored " << stored << " bound " << bound;
  ASSERT_TRUE(UnpackModel(dir / "s.mpk", dir / "u.onnx").ok());
  EXPECT_EQ(ReadFile(dir / "u.onnx"), ReadFile(model));
}

// Many small pruned int8 tensors (a few hundred to a few thousand weights
// each, as in small convolutional models) pay for a code table per stream;
// shared tables must make them smaller than each encoded alone, and restore
// every tensor and the file exactly.
TEST(ArtifactRoundTrip, SmallSparseTensorsShareCodeTables) {
  TempDir dir;
  onnx::ModelProto p = EmptyModel();
  std::mt19937 rng(5);
  std::exponential_distribution<double> mag(0.05);
  uint64_t alone = 0;
  std::vector<std::string> names;
  const int64_t sizes[][2] = {{16, 27}, {16, 144}, {16, 144}, {32, 144}, {32, 16}, {10, 32}, {24, 64}};
  for (const auto& sz : sizes) {
    onnx::TensorProto* t = p.mutable_graph()->add_initializer();
    t->set_name("w" + std::to_string(names.size()));
    names.push_back(t->name());
    t->set_data_type(onnx::TensorProto::INT8);
    t->add_dims(sz[0]);
    t->add_dims(sz[1]);
    std::string q(static_cast<size_t>(sz[0] * sz[1]), '\0');
    for (char& c : q) {
      if (rng() % 10 != 0) continue;
      const int v = std::min(127, 20 + static_cast<int>(mag(rng)));
      c = static_cast<char>(rng() % 2 ? v : -v);
    }
    t->set_raw_data(q);
    const std::vector<int64_t> shape = {sz[0], sz[1]};
    const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(q.data()), q.size());
    alone += EncodeTensor(onnx::TensorProto::INT8, shape, bytes, {}).payload.size();
  }
  auto m = Model::FromProto(p);
  ASSERT_TRUE(m.ok()) << m.status().message();
  ASSERT_TRUE(SaveModel(*m, dir / "small.onnx").ok());
  auto r = PackModel(dir / "small.onnx", dir / "small.mpk");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_GE(r->shared_tables, 2u);  // at least the gap symbols and the values
  uint64_t stored = r->shared_table_bytes;
  for (const auto& t : r->tensors) stored += t.stored_bytes;
  EXPECT_LT(stored, alone * 95 / 100) << "with shared tables " << stored << ", each alone " << alone;
  // The reader decodes each tensor alone with the tables, and unpack restores the file.
  auto reader = Reader::Open(dir / "small.mpk");
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  EXPECT_EQ(reader->info().shared_tables, r->shared_tables);
  for (const std::string& name : names) {
    const TensorInfo* t = reader->FindTensor(name);
    ASSERT_NE(t, nullptr) << name;
    std::string out(t->bytes, '\0');
    std::string detail;
    ASSERT_TRUE(reader->ReadTensor(*t, std::as_writable_bytes(std::span(out)), &detail).ok()) << name;
    EXPECT_EQ(out, m->FindTensor(name)->proto->raw_data()) << name;
  }
  ASSERT_TRUE(UnpackModel(dir / "small.mpk", dir / "back.onnx").ok());
  EXPECT_EQ(ReadFile(dir / "back.onnx"), ReadFile(dir / "small.onnx"));
}

TEST(ArtifactRoundTrip, ConformanceCorpusRestoresExactly) {
  const auto root = testing::ConformanceDir();
  if (root.empty()) GTEST_SKIP() << "../shared/onnx-conformance not present";
  TempDir dir;
  int models = 0, exact = 0;
  for (const auto& f : fs::recursive_directory_iterator(root)) {
    if (f.path().filename() != "model.onnx") continue;
    SCOPED_TRACE(f.path().string());
    PackOptions o;
    o.level = 3;
    o.min_tensor_bytes = 0;  // every tensor through the encoders
    o.inline_up_to = 0;
    auto r = PackModel(f.path(), dir / "c.mpk", o);
    ASSERT_TRUE(r.ok()) << r.status().message();
    auto u = UnpackModel(dir / "c.mpk", dir / "c.onnx");
    ASSERT_TRUE(u.ok()) << u.status().message();
    if (r->exact_onnx) {
      EXPECT_EQ(ReadFile(dir / "c.onnx"), ReadFile(f.path()));
      ++exact;
    }
    ExpectSameModel(f.path(), dir / "c.onnx");
    ++models;
  }
  EXPECT_GT(models, 0);
  std::cout << "[ conformance ] " << models << " models packed and restored, " << exact << " byte-identical\n";
}

TEST(ArtifactRoundTrip, DamagedArtifactsLeaveNoOutput) {
  TempDir dir;
  ASSERT_TRUE(PackModel(testing::SampleModelsDir() / "digits_cnn.onnx", dir / "a.mpk").ok());
  std::string bytes = ReadFile(dir / "a.mpk");
  bytes[bytes.size() / 2] ^= 0x10;
  fs::create_directories(dir / "out");
  testing::WriteFile(dir / "bad.mpk", bytes);
  auto u = UnpackModel(dir / "bad.mpk", dir / "out" / "m.onnx");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(u.status().message().find("bad.mpk"), std::string::npos) << u.status().message();
  EXPECT_TRUE(fs::is_empty(dir / "out"));
}

// unpack serializes the model straight into a temporary file and checks it
// as it goes: a model that does not hash to the packed file's checksum must
// leave nothing behind.
TEST(ArtifactRoundTrip, RestoredModelNotMatchingItsChecksumLeavesNoOutput) {
  const onnx::ModelProto p = OneInitializer(4);
  ArtifactContents c;
  SetSkeleton(p, &c);
  c.tensors.push_back(FloatTensor("w", 4, 16));
  c.exact_onnx = true;
  c.onnx_size = p.SerializeAsString().size() + 22;  // the restored size is right
  c.onnx_checksum = 42;                             // its checksum is not
  TempDir dir;
  fs::create_directories(dir / "out");
  auto u = WriteAndUnpack(c, dir / "c.mpk", dir / "out" / "m.onnx");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.status().code(), StatusCode::kCorrupt) << u.status().message();
  EXPECT_NE(u.status().message().find("checksum"), std::string::npos) << u.status().message();
  EXPECT_TRUE(fs::is_empty(dir / "out"));

  // The same artifact with the right checksum restores.
  onnx::ModelProto full = p;
  full.mutable_graph()->mutable_initializer(0)->set_raw_data(std::string(16, 7));
  std::string expected;
  ASSERT_TRUE(full.SerializeToString(&expected));
  c.onnx_size = expected.size();
  c.onnx_checksum = Checksum(expected.data(), expected.size());
  auto ok = WriteAndUnpack(c, dir / "g.mpk", dir / "out" / "m.onnx");
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_TRUE(ok->byte_exact_checked);
  EXPECT_EQ(ReadFile(dir / "out" / "m.onnx"), expected);
}

// An empty tensor gives unpack nothing to write, but its payload is still
// decoded and checked: one that declares data is refused.
TEST(ArtifactRoundTrip, EmptyTensorsWithDamagedPayloadsAreRefused) {
  const onnx::ModelProto p = OneInitializer(0);
  ArtifactContents c;
  SetSkeleton(p, &c);
  c.tensors.push_back(FloatTensor("w", 0, 8));
  TempDir dir;
  fs::create_directories(dir / "out");
  auto u = WriteAndUnpack(c, dir / "c.mpk", dir / "out" / "m.onnx");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.status().code(), StatusCode::kCorrupt) << u.status().message();
  EXPECT_NE(u.status().message().find("'w'"), std::string::npos) << u.status().message();
  EXPECT_TRUE(fs::is_empty(dir / "out"));

  c.tensors[0].payload.clear();
  EncodeStream(std::vector<uint8_t>{}, {}, &c.tensors[0].payload);
  auto ok = WriteAndUnpack(c, dir / "g.mpk", dir / "out" / "m.onnx");
  ASSERT_TRUE(ok.ok()) << ok.status().message();
}

// unpack splices the data into the graph section without protobuf. What it
// writes must be exactly protobuf's deterministic serialization of the
// model: checked on a file whose fields are out of protobuf's order (so not
// restored byte for byte), with every data type in raw and typed storage,
// initializers and Constant values, and sizes whose length prefixes grow by
// a byte or two when the data goes back in.
TEST(ArtifactRoundTrip, SplicedModelIsProtobufsSerialization) {
  using onnx::TensorProto;
  const TensorProto::DataType types[] = {
      TensorProto::FLOAT,  TensorProto::UINT8,  TensorProto::INT8,    TensorProto::UINT16, TensorProto::INT16,
      TensorProto::INT32,  TensorProto::INT64,  TensorProto::BOOL,    TensorProto::FLOAT16, TensorProto::DOUBLE,
      TensorProto::UINT32, TensorProto::UINT64, TensorProto::BFLOAT16};
  const int64_t counts[] = {20, 70, 3000};
  std::mt19937 rng(11);
  onnx::ModelProto head, tail;  // the file is tail's bytes, then head's
  head.set_ir_version(8);
  head.add_opset_import()->set_version(13);
  onnx::GraphProto* g = head.mutable_graph();
  g->set_name("splice");
  auto* in = g->add_input();
  in->set_name("x");
  in->mutable_type()->mutable_tensor_type()->set_elem_type(TensorProto::FLOAT);
  g->add_output()->set_name("y");
  auto* id = g->add_node();
  id->set_op_type("Identity");
  id->add_input("x");
  id->add_output("y");
  int n = 0;
  for (const auto type : types) {
    for (const int64_t count : counts) {
      TensorProto t;
      t.set_name("t" + std::to_string(n));
      t.set_data_type(type);
      t.add_dims(count);
      t.add_dims(1);
      std::string bytes(static_cast<size_t>(count) * ElementBytes(type), '\0');
      for (char& c : bytes) c = static_cast<char>(type == TensorProto::BOOL ? rng() % 2 : rng() % 4 ? rng() : 0);
      if (n % 2) {
        FillTyped(&t, {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
      } else {
        t.set_raw_data(bytes);
      }
      t.set_doc_string("after the data");
      if (n % 3 == 0) {
        auto* c = g->add_node();
        c->set_op_type("Constant");
        c->add_output(t.name());
        auto* a = c->add_attribute();
        a->set_name("value");
        a->set_type(onnx::AttributeProto::TENSOR);
        t.clear_name();
        *a->mutable_t() = t;
      } else {
        // Out of order: the data fields before the name.
        const std::string name = t.name();
        t.clear_name();
        TensorProto named;
        named.set_name(name);
        *tail.mutable_graph()->add_initializer() = t;
        tail.mutable_graph()->mutable_initializer()->rbegin()->MergeFrom(named);
      }
      ++n;
    }
  }
  TempDir dir;
  std::string file = tail.SerializeAsString() + head.SerializeAsString();
  testing::WriteFile(dir / "m.onnx", file);
  auto m = LoadModel(dir / "m.onnx");
  ASSERT_TRUE(m.ok()) << m.status().message();
  std::string expected;
  ASSERT_TRUE(SerializeDeterministic(m->proto(), &expected));
  ASSERT_NE(expected, file);
  PackOptions o;
  o.min_tensor_bytes = 0;
  o.inline_up_to = 0;
  auto r = PackModel(dir / "m.onnx", dir / "m.mpk", o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_FALSE(r->exact_onnx);
  EXPECT_EQ(r->tensors.size(), static_cast<size_t>(n));
  EXPECT_TRUE(r->inline_tensors.empty());
  auto u = UnpackModel(dir / "m.mpk", dir / "u.onnx");
  ASSERT_TRUE(u.ok()) << u.status().message();
  EXPECT_FALSE(u->byte_exact_checked);
  EXPECT_EQ(ReadFile(dir / "u.onnx"), expected);

  // With every tensor left in the graph section, a reader finds each one
  // there: raw and typed, initializer and Constant, every dtype.
  o.min_tensor_bytes = uint64_t{1} << 40;
  r = PackModel(dir / "m.onnx", dir / "g.mpk", o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->tensors.empty());
  auto reader = Reader::Open(dir / "g.mpk");
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  auto in_graph = ReadGraphTensors(*reader);
  ASSERT_TRUE(in_graph.ok()) << in_graph.status().message();
  ASSERT_EQ(in_graph->size(), static_cast<size_t>(n));
  for (const GraphTensor& t : *in_graph) {
    auto view = m->View(t.info.name);
    ASSERT_TRUE(view.ok()) << t.info.name;
    EXPECT_EQ(t.info.dtype, static_cast<int32_t>(view->dtype())) << t.info.name;
    EXPECT_EQ(t.info.shape, view->shape()) << t.info.name;
    EXPECT_EQ(t.info.storage, view->storage() == Storage::kRaw ? 0 : 1) << t.info.name;
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(t.data.data()), t.data.size()), Packed(*view)) << t.info.name;
  }
}

// Typed fields in the graph section are read in either wire form protobuf
// accepts (packed, or one field per entry) and narrowed as ONNX's readers
// do; data that does not fit the shape is refused with the tensor named.
TEST(ArtifactRoundTrip, GraphTensorsAreReadFromEitherWireForm) {
  auto tag = [](uint32_t field, uint8_t type, std::string* out) {
    uint64_t v = uint64_t{field} << 3 | type;
    do {
      out->push_back(static_cast<char>((v & 0x7f) | (v > 0x7f ? 0x80 : 0)));
      v >>= 7;
    } while (v);
  };
  auto varint = [&](uint64_t v, std::string* out) {
    do {
      out->push_back(static_cast<char>((v & 0x7f) | (v > 0x7f ? 0x80 : 0)));
      v >>= 7;
    } while (v);
  };
  auto length_field = [&](uint32_t field, const std::string& body, std::string* out) {
    tag(field, 2, out);
    varint(body.size(), out);
    *out += body;
  };
  // TensorProto fields: dims 1, data_type 2, float_data 4, int32_data 5, name 8, raw_data 9.
  auto tensor = [&](const std::string& name, int64_t dim, int dtype, const std::string& data_fields) {
    std::string t;
    tag(1, 0, &t);
    varint(static_cast<uint64_t>(dim), &t);
    tag(2, 0, &t);
    varint(static_cast<uint64_t>(dtype), &t);
    t += data_fields;
    length_field(8, name, &t);
    return t;
  };
  std::string floats;  // float_data as three fixed32 fields
  for (float f : {1.5f, -2.0f, 0.25f}) {
    tag(4, 5, &floats);
    floats.append(reinterpret_cast<const char*>(&f), 4);
  }
  std::string int8s;  // int32_data as varint fields: int8 values, negatives as 64-bit two's complement
  for (int v : {-128, 5, -1, 127}) {
    tag(5, 0, &int8s);
    varint(static_cast<uint64_t>(static_cast<int64_t>(v)), &int8s);
  }
  auto graph_of = [&](const std::vector<std::string>& tensors) {
    std::string g;
    for (const std::string& t : tensors) length_field(5, t, &g);
    std::string model;
    length_field(7, g, &model);
    return model;
  };
  auto find = [](const std::string& model, std::vector<InlineTensor>* out, std::string* error) {
    return FindInlineTensors({reinterpret_cast<const uint8_t*>(model.data()), model.size()}, out, error);
  };
  std::vector<InlineTensor> found;
  std::string error;
  const std::string model = graph_of({tensor("f", 3, 1, floats), tensor("q", 4, 3, int8s)});
  ASSERT_TRUE(find(model, &found, &error)) << error;
  ASSERT_EQ(found.size(), 2u);
  const float want_f[] = {1.5f, -2.0f, 0.25f};
  EXPECT_EQ(found[0].info.name, "f");
  EXPECT_EQ(found[0].info.storage, 1);
  ASSERT_EQ(found[0].data().size(), sizeof want_f);
  EXPECT_EQ(std::memcmp(found[0].data().data(), want_f, sizeof want_f), 0);
  const int8_t want_q[] = {-128, 5, -1, 127};
  ASSERT_EQ(found[1].data().size(), sizeof want_q);
  EXPECT_EQ(std::memcmp(found[1].data().data(), want_q, sizeof want_q), 0);

  std::string raw;  // 3 float32 need 12 bytes
  length_field(9, std::string(11, '\0'), &raw);
  EXPECT_FALSE(find(graph_of({tensor("short", 3, 1, raw)}), &found, &error));
  EXPECT_NE(error.find("'short'"), std::string::npos) << error;
  EXPECT_FALSE(find(graph_of({tensor("fewer", 4, 1, floats)}), &found, &error));
  EXPECT_NE(error.find("'fewer'"), std::string::npos) << error;
  EXPECT_FALSE(find(graph_of({tensor("negative", -3, 1, floats)}), &found, &error));
  EXPECT_NE(error.find("'negative'"), std::string::npos) << error;
}

// Small tensors whose index records and stream headers cost more than
// their coding saves stay inside the graph section: the packer tries each
// threshold up to inline_up_to and must end at least as small as the best
// of them, restore the file exactly, and list only the tensors it indexed.
TEST(ArtifactRoundTrip, SmallTensorsStayInTheGraphWhenThatIsSmaller) {
  TempDir dir;
  onnx::ModelProto p = EmptyModel();
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.f, 0.05f);
  // Per-channel scales and biases of 16 to 128 floats, and a few larger
  // sparse int8 weights that do pay for their own payloads.
  const int64_t floats[] = {16, 16, 32, 32, 64, 64, 128, 16, 32, 64};
  for (size_t k = 0; k < std::size(floats); ++k) {
    onnx::TensorProto* t = p.mutable_graph()->add_initializer();
    t->set_name("layer" + std::to_string(k) + ".scale");
    t->set_data_type(onnx::TensorProto::FLOAT);
    t->add_dims(floats[k]);
    std::vector<float> v(static_cast<size_t>(floats[k]));
    for (float& x : v) x = std::fabs(normal(rng)) + 0.01f;
    t->set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4));
  }
  for (int k = 0; k < 3; ++k) {
    onnx::TensorProto* t = p.mutable_graph()->add_initializer();
    t->set_name("layer" + std::to_string(k) + ".weight");
    t->set_data_type(onnx::TensorProto::INT8);
    t->add_dims(64);
    t->add_dims(72);
    std::string q(64 * 72, '\0');
    for (char& c : q) c = rng() % 10 ? 0 : static_cast<char>(static_cast<int>(normal(rng) * 1000) % 127);
    t->set_raw_data(q);
  }
  auto m = Model::FromProto(p);
  ASSERT_TRUE(m.ok()) << m.status().message();
  ASSERT_TRUE(SaveModel(*m, dir / "m.onnx").ok());
  uint64_t best_single = UINT64_MAX;
  for (uint64_t up_to : {0, 128, 256, 512}) {
    PackOptions o;
    o.inline_up_to = up_to;
    auto r = PackModel(dir / "m.onnx", dir / "t.mpk", o);
    ASSERT_TRUE(r.ok()) << r.status().message();
    if (up_to == 0) {
      EXPECT_EQ(r->graph_tensors, 0u);
    }
    best_single = std::min(best_single, r->artifact_bytes);
  }
  auto r = PackModel(dir / "m.onnx", dir / "m.mpk");
  ASSERT_TRUE(r.ok()) << r.status().message();
  PackOptions none;
  none.inline_up_to = 0;
  auto all = PackModel(dir / "m.onnx", dir / "all.mpk", none);
  ASSERT_TRUE(all.ok()) << all.status().message();
  EXPECT_GT(r->graph_tensors, 0u);
  EXPECT_LT(r->artifact_bytes, all->artifact_bytes);
  EXPECT_LE(r->artifact_bytes, best_single);
  EXPECT_EQ(r->tensors.size() + r->graph_tensors, all->tensors.size());
  auto reader = Reader::Open(dir / "m.mpk");
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  EXPECT_EQ(reader->tensors().size(), r->tensors.size());
  for (int k = 0; k < 3; ++k) EXPECT_NE(reader->FindTensor("layer" + std::to_string(k) + ".weight"), nullptr);
  // The tensors kept in the graph are found there, with their data.
  auto in_graph = ReadGraphTensors(*reader);
  ASSERT_TRUE(in_graph.ok()) << in_graph.status().message();
  EXPECT_EQ(in_graph->size(), r->graph_tensors);
  for (const GraphTensor& t : *in_graph) {
    EXPECT_EQ(reader->FindTensor(t.info.name), nullptr) << t.info.name;
    auto view = m->View(t.info.name);
    ASSERT_TRUE(view.ok()) << t.info.name;
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(t.data.data()), t.data.size()), Packed(*view)) << t.info.name;
  }
  ASSERT_TRUE(UnpackModel(dir / "m.mpk", dir / "u.onnx").ok());
  EXPECT_EQ(ReadFile(dir / "u.onnx"), ReadFile(dir / "m.onnx"));
  // The largest threshold restores exactly too; a larger one is refused
  // (tensors above it were once spliced into the graph without their data,
  // an artifact unpack could not read).
  PackOptions most;
  most.inline_up_to = PackOptions::kMaxInlineUpTo;
  auto r_most = PackModel(dir / "m.onnx", dir / "most.mpk", most);
  ASSERT_TRUE(r_most.ok()) << r_most.status().message();
  EXPECT_LE(r_most->artifact_bytes, r->artifact_bytes);
  ASSERT_TRUE(UnpackModel(dir / "most.mpk", dir / "most.onnx").ok());
  EXPECT_EQ(ReadFile(dir / "most.onnx"), ReadFile(dir / "m.onnx"));
  most.inline_up_to = PackOptions::kMaxInlineUpTo + 1;
  auto refused = PackModel(dir / "m.onnx", dir / "refused.mpk", most);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(std::filesystem::exists(dir / "refused.mpk"));
}

// A graph section that is not a model, or that disagrees with the index,
// is refused with the tensor and the problem named, and nothing is written.
TEST(ArtifactRoundTrip, GraphSectionsThatDisagreeWithTheIndexAreRefused) {
  struct Case {
    const char* what;
    std::function<void(onnx::ModelProto*, std::string*, std::vector<PendingTensor>*)> change;
    const char* message;
  };
  auto tensor = [](const char* name) { return FloatTensor(name, 4, 16); };
  const Case cases[] = {
      {"garbage", [](auto*, std::string* bytes, auto*) { *bytes = "\x3a\xff\xff"; }, "is not an ONNX model"},
      {"two graphs", [](auto* p, std::string* bytes, auto*) { *bytes = p->SerializeAsString() + p->SerializeAsString(); },
       "is not an ONNX model (ModelProto.graph)"},
      {"a name the graph lacks", [&](auto*, auto*, auto* ts) { ts->push_back(tensor("v")); }, "tensor 'v' is not in the graph"},
      {"a name twice", [&](auto*, auto*, auto* ts) { ts->push_back(tensor("w")); }, "twice"},  // refused by the index already
      {"another shape", [](auto* p, auto*, auto*) { p->mutable_graph()->mutable_initializer(0)->set_dims(0, 5); },
       "type or shape in the index disagrees"},
      {"another type", [](auto* p, auto*, auto*) { p->mutable_graph()->mutable_initializer(0)->set_data_type(onnx::TensorProto::INT32); },
       "type or shape in the index disagrees"},
      {"data in the graph", [](auto* p, auto*, auto*) { p->mutable_graph()->mutable_initializer(0)->set_raw_data(""); },
       "already holds its data"},
      {"typed data in the graph", [](auto* p, auto*, auto*) { p->mutable_graph()->mutable_initializer(0)->add_float_data(1); },
       "already holds its data"},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.what);
    onnx::ModelProto p = OneInitializer(4);
    std::vector<PendingTensor> ts = {tensor("w")};
    std::string bytes;
    k.change(&p, &bytes, &ts);
    if (bytes.empty()) bytes = p.SerializeAsString();
    ArtifactContents c;
    EncodeStream(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), {}, &c.skeleton);
    c.tensors = ts;
    TempDir dir;
    fs::create_directories(dir / "out");
    auto u = WriteAndUnpack(c, dir / "c.mpk", dir / "out" / "m.onnx");
    ASSERT_FALSE(u.ok());
    EXPECT_EQ(u.status().code(), StatusCode::kCorrupt) << u.status().message();
    EXPECT_NE(u.status().message().find(k.message), std::string::npos) << u.status().message();
    EXPECT_NE(u.status().message().find("c.mpk"), std::string::npos) << u.status().message();
    EXPECT_TRUE(fs::is_empty(dir / "out"));
  }
}

TEST(ArtifactRoundTrip, ExternalLocationsOutsideTheOutputFolderAreRefused) {
  onnx::ModelProto p = OneInitializer(16);
  onnx::TensorProto* t = p.mutable_graph()->mutable_initializer(0);
  t->set_data_location(onnx::TensorProto::EXTERNAL);
  auto* kv = t->add_external_data();
  kv->set_key("location");
  kv->set_value("../evil.bin");
  ArtifactContents c;
  SetSkeleton(p, &c);
  PendingFile f;
  f.name = "../evil.bin";
  f.size = 64;
  EncodeStream({}, {}, &f.residue);
  c.files.push_back(f);
  PendingTensor pt = FloatTensor("w", 16, 64);
  pt.storage = StorageKind::kExternal;
  c.tensors.push_back(pt);
  TempDir dir;
  fs::create_directories(dir / "out");
  auto u = WriteAndUnpack(c, dir / "e.mpk", dir / "out" / "m.onnx");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.status().code(), StatusCode::kPermissionDenied) << u.status().message();
  EXPECT_FALSE(fs::exists(dir / "evil.bin"));
  EXPECT_TRUE(fs::is_empty(dir / "out"));
}

}  // namespace
}  // namespace modelpress::pack
