// The container and reader: round trip, and every kind of damage is refused
// with a message instead of a crash or a huge allocation.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstring>
#include <map>
#include <random>

#include "codec/tensor_codec.h"
#include "container/atomic_file.h"
#include "container/checksum.h"
#include "entropy/huffman.h"
#include "container/format.h"
#include "container/index.h"
#include "container/out_of_memory.h"
#include "container/parallel.h"
#include "container/writer.h"
#include "container/zstd_frame.h"
#include "modelpress/pack_reader.h"
#include "modelpress/tensor.h"
#include "support/model_builder.h"
#include "support/test_paths.h"

namespace modelpress::pack {
namespace {

constexpr int32_t kF32 = static_cast<int32_t>(DType::kFloat32);
constexpr int32_t kI8 = static_cast<int32_t>(DType::kInt8);

struct Sample {
  std::vector<std::vector<uint8_t>> data;  // decoded bytes per tensor
  std::vector<uint8_t> artifact;
};

// Encodes with shared tables built from the tensor's own streams (as
// PackModel builds them across tensors), keeps those the smallest candidate
// uses, and appends them to `tables`.
EncodedTensor EncodeWithSharedTables(int32_t dtype, const std::vector<int64_t>& shape, const std::vector<uint8_t>& bytes,
                                     std::vector<CodeLengths>* tables) {
  TensorPlan plan = PlanTensor(dtype, shape, bytes, {}, true);
  std::map<StreamKind, CodeLengths> offered;  // one table per kind, from the plan's histograms
  for (const auto& [kind, h] : plan.stream_counts()) {
    CodeLengths l{};
    if (!offered.count(kind) && BuildCodeLengths(*h, kHuffmanMaxBits, &l)) offered.emplace(kind, l);
  }
  auto refs_of = [](const std::map<StreamKind, CodeLengths>& ts, uint32_t first_id) {
    SharedTableMap refs;
    for (const auto& [kind, l] : ts) refs.emplace(kind, SharedTableRef{first_id + static_cast<uint32_t>(refs.size()), &l});
    return refs;
  };
  const SharedTableMap all = refs_of(offered, 0);
  std::map<StreamKind, CodeLengths> used;
  const auto savings = plan.Size(&all).savings;
  for (const auto& [kind, ref] : all) {
    const bool uses = std::any_of(savings.begin(), savings.end(), [&](const auto& s) { return s.first == ref.id; });
    if (uses) used.emplace(kind, *ref.lengths);
  }
  const SharedTableMap refs = refs_of(used, static_cast<uint32_t>(tables->size()));
  EncodedTensor e = plan.Write(&refs);
  for (const auto& [kind, l] : used) tables->push_back(l);
  return e;
}

Sample MakeSample() {
  Sample s;
  ArtifactContents c;
  std::mt19937 rng(21);
  std::normal_distribution<float> d(0, 0.1f);
  std::vector<float> f(600);
  for (auto& x : f) x = d(rng);
  std::vector<int8_t> q(2000, 0);
  for (size_t i = 0; i < q.size(); i += 1 + rng() % 12) q[i] = static_cast<int8_t>(rng() % 200 - 100);
  auto add = [&](std::string name, int32_t dtype, std::vector<int64_t> shape, std::vector<uint8_t> bytes) {
    PendingTensor t;
    t.name = std::move(name);
    t.dtype = dtype;
    t.shape = std::move(shape);
    // The int8 tensor's streams use shared tables, so every test of damage
    // also covers them.
    EncodedTensor e = dtype == kI8 ? EncodeWithSharedTables(dtype, t.shape, bytes, &c.tables)
                                   : EncodeTensor(dtype, t.shape, bytes, {});
    t.encoder = e.encoder;
    t.payload = std::move(e.payload);
    c.tensors.push_back(std::move(t));
    s.data.push_back(std::move(bytes));
  };
  std::vector<uint8_t> fb(f.size() * 4), qb(q.size());
  std::memcpy(fb.data(), f.data(), fb.size());
  std::memcpy(qb.data(), q.data(), qb.size());
  add("w.float", kF32, {20, 30}, fb);
  add("w.int8", kI8, {2, 1000}, qb);
  // The graph and the index with the built-in dictionary, as PackModel
  // writes them; text that zstd codes as one literal run without it.
  const std::string graph = "graph: Conv Relu QuantizeLinear DequantizeLinear onnx::Conv_62_quantized onnx::Conv_62_scale";
  StreamOptions so;
  so.force_zstd = true;
  so.graph_dictionary = c.graph_dictionary = true;
  EncodeStream(std::span(reinterpret_cast<const uint8_t*>(graph.data()), graph.size()), so, &c.skeleton);
  s.artifact = SerializeArtifact(c);
  return s;
}

// Opens and reads everything; returns the first error (ok when all reads succeed).
Status ReadAll(std::span<const uint8_t> bytes, std::vector<std::vector<uint8_t>>* out = nullptr) {
  // An exact-size copy, so AddressSanitizer sees any read past the end.
  std::vector<uint8_t> copy(bytes.begin(), bytes.end());
  ReaderOptions o;
  o.max_tensor_bytes = 1 << 20;
  auto r = Reader::FromMemory(std::as_bytes(std::span(copy)), o, "test.mpk");
  if (!r.ok()) return r.status();
  for (const TensorInfo& t : r->tensors()) {
    std::vector<uint8_t> buf(t.bytes);
    MP_RETURN_IF_ERROR(r->ReadTensor(t, std::as_writable_bytes(std::span(buf))));
    if (out) out->push_back(std::move(buf));
  }
  return r->ReadSkeleton().status();
}

// The decoded index of an artifact.
std::vector<uint8_t> IndexOf(const std::vector<uint8_t>& a) {
  Footer f;
  std::memcpy(&f, a.data() + a.size() - sizeof f, sizeof f);
  std::span<const uint8_t> in(a.data() + f.index_offset, f.index_size);
  uint64_t n = 0;
  EXPECT_TRUE(PeekStreamSize(in, &n));
  std::vector<uint8_t> index(n);
  std::string error;
  StreamContext sections;
  FileHeader h;
  std::memcpy(&h, a.data(), sizeof h);
  sections.graph_dictionary = h.flags & kHeaderGraphDictionary;
  EXPECT_TRUE(DecodeStream(&in, index, &error, nullptr, sections)) << error;
  return index;
}

// Replaces the index and re-seals everything after it (index stream,
// footer, header size and checksum), as a hostile writer would.
void ReplaceIndex(std::vector<uint8_t>* a, const std::vector<uint8_t>& index) {
  Footer f;
  std::memcpy(&f, a->data() + a->size() - sizeof f, sizeof f);
  a->resize(f.index_offset);
  std::vector<uint8_t> stored;
  StreamOptions so;
  so.graph_dictionary = true;
  EncodeStream(index, so, &stored);
  a->insert(a->end(), stored.begin(), stored.end());
  f.index_size = stored.size();
  f.index_checksum = Checksum(stored.data(), stored.size());
  f.checksum = Checksum(&f, 24);
  const auto* fp = reinterpret_cast<const uint8_t*>(&f);
  a->insert(a->end(), fp, fp + sizeof f);
  FileHeader h;
  std::memcpy(&h, a->data(), sizeof h);
  h.file_size = a->size();
  h.checksum = Checksum(&h, 24);
  std::memcpy(a->data(), &h, sizeof h);
}

IndexContents DecodedIndex(const std::vector<uint8_t>& a) {
  IndexContents ix;
  std::string error;
  EXPECT_TRUE(DecodeIndex(IndexOf(a), &ix, &error)) << error;
  return ix;
}

// The artifact with its index changed by `edit`, re-sealed.
template <class F>
std::vector<uint8_t> WithIndex(const std::vector<uint8_t>& artifact, F&& edit) {
  auto a = artifact;
  IndexContents ix = DecodedIndex(a);
  edit(ix);
  ReplaceIndex(&a, EncodeIndex(ix));
  return a;
}

TEST(Container, RoundTripsTensorsAndGraph) {
  const Sample s = MakeSample();
  std::vector<std::vector<uint8_t>> back;
  const Status st = ReadAll(s.artifact, &back);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(back, s.data);
  auto r = Reader::FromMemory(std::as_bytes(std::span(s.artifact)));
  ASSERT_TRUE(r.ok());
  ASSERT_NE(r->FindTensor("w.int8"), nullptr);
  EXPECT_EQ(r->FindTensor("w.int8")->shape, (std::vector<int64_t>{2, 1000}));
  EXPECT_EQ(r->FindTensor("missing"), nullptr);
  std::vector<std::byte> small(3);
  EXPECT_EQ(r->ReadTensor(*r->FindTensor("w.int8"), small).code(), StatusCode::kInvalidArgument);
}

TEST(Container, EveryTruncationIsRefused) {
  const Sample s = MakeSample();
  for (size_t len = 0; len < s.artifact.size(); ++len) {
    const Status st = ReadAll(std::span(s.artifact).first(len));
    ASSERT_FALSE(st.ok()) << "length " << len;
    EXPECT_EQ(st.code(), StatusCode::kCorrupt) << st.message();
    EXPECT_NE(st.message().find("test.mpk"), std::string::npos) << st.message();
  }
  const Status st = ReadAll(std::span(s.artifact).first(s.artifact.size() - 5));
  EXPECT_NE(st.message().find("truncated"), std::string::npos) << st.message();
}

TEST(Container, EverySingleBitFlipIsDetected) {
  const Sample s = MakeSample();
  for (size_t byte = 0; byte < s.artifact.size(); ++byte) {
    for (int bit = 0; bit < 8; bit += (byte % 7 == 0 ? 1 : 3)) {
      auto a = s.artifact;
      a[byte] ^= static_cast<uint8_t>(1u << bit);
      const Status st = ReadAll(a);
      ASSERT_FALSE(st.ok()) << "flip at byte " << byte << " bit " << bit;
    }
  }
  auto a = s.artifact;
  a[sizeof(FileHeader) + 3] ^= 1;  // inside the first payload
  EXPECT_NE(ReadAll(a).message().find("checksum mismatch"), std::string::npos) << ReadAll(a).message();
}

TEST(Container, HostileIndexesAreRefusedBeforeAllocating) {
  const Sample s = MakeSample();
  auto message = [](const std::vector<uint8_t>& a) { return ReadAll(a).message(); };
  // Tensor 0 declares 2^40 elements.
  EXPECT_NE(message(WithIndex(s.artifact, [](IndexContents& ix) { ix.tensors[0].shape = {1 << 20, 1 << 20}; }))
                .find("over the reader's limit"),
            std::string::npos);
  // A shape whose product overflows.
  EXPECT_NE(message(WithIndex(s.artifact, [](IndexContents& ix) { ix.tensors[0].shape = {1ll << 40, 1ll << 40}; }))
                .find("overflows"),
            std::string::npos);
  // A payload that runs past the index.
  EXPECT_NE(message(WithIndex(s.artifact, [](IndexContents& ix) { ix.tensors[1].payload_size = uint64_t{1} << 50; }))
                .find("does not fit the file"),
            std::string::npos);
  // Sizes that leave a gap before the index.
  EXPECT_NE(message(WithIndex(s.artifact, [](IndexContents& ix) { ix.tensors[1].payload_size -= 1; })).find("sections end at"),
            std::string::npos);
  // An unknown encoder, storage, flag; an external file that is not listed.
  EXPECT_NE(message(WithIndex(s.artifact, [](IndexContents& ix) { ix.tensors[0].encoder = 13; })).find("encoder 13"),
            std::string::npos);
  EXPECT_NE(message(WithIndex(s.artifact, [](IndexContents& ix) { ix.tensors[0].storage = 7; })).find("storage 7"),
            std::string::npos);
  EXPECT_NE(message(WithIndex(s.artifact, [](IndexContents& ix) { ix.flags |= 4; })).find("reserved"), std::string::npos);
  // Shared tables: the flag without tables, a table too few for the
  // streams, a table that is not a complete prefix code.
  EXPECT_NE(message(WithIndex(s.artifact, [](IndexContents& ix) { ix.tables.clear(); })).find("declares 0 shared code tables"),
            std::string::npos);
  EXPECT_NE(message(WithIndex(s.artifact, [](IndexContents& ix) { ix.tables.pop_back(); }))
                .find("shared code table " + std::to_string(DecodedIndex(s.artifact).tables.size() - 1) + ", but the index holds"),
            std::string::npos);
  EXPECT_NE(message(WithIndex(s.artifact, [](IndexContents& ix) { ix.tables[0][0] = 1; ix.tables[0][1] = 1; ix.tables[0][2] = 1; }))
                .find("shared table 0: Huffman table is oversubscribed"),
            std::string::npos);
  EXPECT_NE(message(WithIndex(s.artifact, [](IndexContents& ix) {
              ix.tensors[0].storage = static_cast<uint8_t>(StorageKind::kExternal);
              ix.tensors[0].external_file = 0;
            })).find("not in the index"),
            std::string::npos);
  {
    // A tensor count far beyond what the index bytes hold (the count is the
    // last field of an index without tensors), and a byte after the records.
    auto a = s.artifact;
    IndexContents ix = DecodedIndex(a);
    ix.tensors.clear();
    std::vector<uint8_t> bytes = EncodeIndex(ix);
    bytes.pop_back();
    PutVarint(uint64_t{1} << 40, &bytes);
    ReplaceIndex(&a, bytes);
    EXPECT_NE(message(a).find("more than its bytes can hold"), std::string::npos) << message(a);
    a = s.artifact;
    bytes = IndexOf(a);
    bytes.push_back(0);
    ReplaceIndex(&a, bytes);
    EXPECT_NE(message(a).find("follow the last tensor"), std::string::npos) << message(a);
  }
  // Every truncation of the index bytes is refused by the parser.
  const std::vector<uint8_t> index = IndexOf(s.artifact);
  for (size_t cut = 0; cut < index.size(); ++cut) {
    IndexContents ix;
    std::string error;
    EXPECT_FALSE(DecodeIndex(std::span(index).first(cut), &ix, &error)) << cut;
    EXPECT_FALSE(error.empty());
  }
}

// A tensor that declares more memory than the system grants (1 GiB under a
// 512 MiB address-space limit): unpack, of the model or of that tensor
// alone, refuses it with exit code 71 and a message naming the artifact and
// the tensor, and leaves no output. Without the limit the same artifact is
// refused as damaged, so the limit is what the first refusals show.
TEST(Container, MemoryTheSystemRefusesIsAnErrorNotACrash) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer reserves more address space than the limit this test sets";
#else
  if (testing::RunCommand("command -v prlimit").exit_code != 0) GTEST_SKIP() << "prlimit (util-linux) is not installed";
  testing::TempDir dir;
  const std::string cli = testing::ShellQuote(testing::CliPath().string());
  // A hostile artifact: the graph and the index agree on a 16384 x 16384
  // float32 initializer (1 GiB), whose payload is that of a small tensor.
  constexpr int64_t kSide = 1 << 14;
  onnx::ModelProto model = testing::ModelBuilder().Input("x", {1, kSide}).Output("y").Node("MatMul", {"x", "w"}, {"y"}).Proto();
  onnx::TensorProto* w = model.mutable_graph()->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto::FLOAT);
  w->add_dims(kSide);
  w->add_dims(kSide);
  const std::string graph = model.SerializeAsString();
  ArtifactContents c;
  StreamOptions so;
  so.force_zstd = true;
  so.graph_dictionary = c.graph_dictionary = true;
  EncodeStream(std::span(reinterpret_cast<const uint8_t*>(graph.data()), graph.size()), so, &c.skeleton);
  PendingTensor t;
  t.name = "w";
  t.dtype = kF32;
  t.shape = {kSide, kSide};
  const std::vector<uint8_t> small(64, 1);
  const std::vector<int64_t> small_shape = {16};
  EncodedTensor e = EncodeTensor(kF32, small_shape, small, {});
  t.encoder = e.encoder;
  t.payload = std::move(e.payload);
  c.tensors.push_back(std::move(t));
  const std::vector<uint8_t> big = SerializeArtifact(c);
  const auto bad = dir / "big.mpk";
  testing::WriteFile(bad, std::string(big.begin(), big.end()));
  const auto mpk = dir / "m.mpk";
  auto r = testing::RunCommand(cli + " pack " + testing::ShellQuote((testing::SampleModelsDir() / "digits_mlp.onnx").string()) +
                               " -o " + testing::ShellQuote(mpk.string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string limited = "prlimit --as=" + std::to_string(512u << 20) + " -- " + cli;
  for (const std::string args : {"", " --threads 1", " --tensor w"}) {
    const auto out = dir / "out";
    r = testing::RunCommand(limited + " unpack " + testing::ShellQuote(bad.string()) + " -o " +
                            testing::ShellQuote(out.string()) + args);
    EXPECT_EQ(r.exit_code, 71) << args << ": " << r.err;
    EXPECT_EQ(r.err.rfind("modelpress: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find("big.mpk"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("'w'"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("out of memory"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(std::filesystem::exists(out)) << args;
  }
  // The limit leaves room for an ordinary unpack.
  r = testing::RunCommand(limited + " unpack " + testing::ShellQuote(mpk.string()) + " -o " +
                          testing::ShellQuote((dir / "ok.onnx").string()));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = testing::RunCommand(cli + " unpack " + testing::ShellQuote(bad.string()) + " --threads 1 -o " +
                          testing::ShellQuote((dir / "x.onnx").string()));
  EXPECT_EQ(r.exit_code, 4) << r.err;
  for (const auto& f : std::filesystem::directory_iterator(dir.path())) {
    const std::string name = f.path().filename().string();
    EXPECT_TRUE(name == "m.mpk" || name == "big.mpk" || name == "ok.onnx") << name;
  }
#endif
}

// The artifact code's own ParallelFor and BackgroundTask hand a worker's
// exception to the caller (PackModel turns std::bad_alloc into a Status).
TEST(Container, WorkerExceptionsReachTheCaller) {
  std::atomic<int> started{0};
  EXPECT_THROW(ParallelFor(1000, 2,
                           [&](size_t i) {
                             ++started;
                             if (i > 0) throw std::bad_alloc();
                           }),
               std::bad_alloc);
  EXPECT_LE(started.load(), 3);  // index 0, and at most one further per thread
  BackgroundTask task([] { throw std::bad_alloc(); });
  EXPECT_THROW(task.Join(), std::bad_alloc);
  BackgroundTask fine([] {});
  EXPECT_NO_THROW(fine.Join());
  EXPECT_EQ(ReportOutOfMemory("x.mpk", []() -> Status { throw std::bad_alloc(); }).code(), StatusCode::kResourceExhausted);
}

// An artifact being written is an unnamed file where the filesystem allows:
// a process killed before Commit (SIGKILL, which no handler sees) leaves
// nothing in the folder, and Commit replaces an existing file.
TEST(Container, AnOutputInProgressLeavesNothingWhenKilled) {
  testing::TempDir dir;
  const int probe = ::open(dir.path().c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
  if (probe < 0) GTEST_SKIP() << dir.path() << ": the filesystem has no O_TMPFILE; outputs use a named temporary there";
  ::close(probe);
  auto entries = [&] {
    std::vector<std::string> names;
    for (const auto& f : std::filesystem::directory_iterator(dir.path())) names.push_back(f.path().filename().string());
    return names;
  };
  const std::vector<char> data(3 << 20, 'x');  // more than the write buffer, so bytes reach the file
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    AtomicFile f(dir / "out.mpk");
    if (!f.Open().ok() || !f.Write(data.data(), data.size()).ok()) ::_exit(1);
    if (std::filesystem::directory_iterator(dir.path()) != std::filesystem::directory_iterator()) ::_exit(2);
    ::raise(SIGKILL);
    ::_exit(3);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  EXPECT_TRUE(entries().empty());

  testing::WriteFile(dir / "out.mpk", "old");
  {
    AtomicFile f(dir / "out.mpk");
    ASSERT_TRUE(f.Open().ok());
    ASSERT_TRUE(f.Write(data.data(), data.size()).ok());
    EXPECT_EQ(entries(), std::vector<std::string>{"out.mpk"});
    EXPECT_EQ(testing::ReadFile(dir / "out.mpk"), "old");
    // Read back before Commit: every byte written, buffered ones included,
    // and the check's error comes back.
    ASSERT_TRUE(f.Write("tail", 4).ok());
    EXPECT_TRUE(f.CheckWritten([&](std::span<const uint8_t> b) {
                   EXPECT_EQ(b.size(), data.size() + 4);
                   EXPECT_EQ(std::string(b.end() - 4, b.end()), "tail");
                   return Status::Ok();
                 }).ok());
    EXPECT_EQ(f.CheckWritten([](std::span<const uint8_t>) { return Corrupt("no"); }).code(), StatusCode::kCorrupt);
    ASSERT_TRUE(f.Commit().ok());
  }
  EXPECT_EQ(entries(), std::vector<std::string>{"out.mpk"});
  EXPECT_EQ(testing::ReadFile(dir / "out.mpk"), std::string(data.begin(), data.end()) + "tail");
  {
    AtomicFile f(dir / "never.mpk");
    ASSERT_TRUE(f.Open().ok());
    ASSERT_TRUE(f.Write("abc", 3).ok());
  }
  EXPECT_EQ(entries(), std::vector<std::string>{"out.mpk"});
}

TEST(Container, BadMagicAndNewerVersionsAreNamed) {
  const Sample s = MakeSample();
  auto a = s.artifact;
  a[1] = 'X';
  EXPECT_NE(ReadAll(a).message().find("bad magic"), std::string::npos);
  a = s.artifact;
  FileHeader h;
  std::memcpy(&h, a.data(), sizeof h);
  for (uint16_t major : {0, 1, 3}) {
    h.version_major = major;
    h.checksum = Checksum(&h, 24);
    std::memcpy(a.data(), &h, sizeof h);
    const Status st = ReadAll(a);
    EXPECT_EQ(st.code(), StatusCode::kUnsupported);
    EXPECT_NE(st.message().find("version " + std::to_string(major) + "." + std::to_string(kVersionMinor)), std::string::npos)
        << st.message();
  }
}

// Header flags: the graph dictionary is needed to read a file that uses it,
// and unknown flags are refused.
TEST(Container, TheGraphDictionaryFlagIsHonoured) {
  const Sample s = MakeSample();
  std::vector<std::vector<uint8_t>> back;
  ASSERT_TRUE(ReadAll(s.artifact, &back).ok()) << ReadAll(s.artifact).message();
  EXPECT_EQ(back, s.data);
  auto with_flags = [&](uint32_t flags) {
    auto a = s.artifact;
    FileHeader h;
    std::memcpy(&h, a.data(), sizeof h);
    h.flags = flags;
    h.checksum = Checksum(&h, 24);
    std::memcpy(a.data(), &h, sizeof h);
    return a;
  };
  // Without the flag, the sections' frames refer to dictionary content the
  // reader does not have.
  const Status no_dict = ReadAll(with_flags(0));
  EXPECT_EQ(no_dict.code(), StatusCode::kCorrupt);
  EXPECT_NE(no_dict.message().find("section: zstd: "), std::string::npos) << no_dict.message();
  const Status reserved = ReadAll(with_flags(kHeaderGraphDictionary | 2));
  EXPECT_NE(reserved.message().find("reserved header flags"), std::string::npos) << reserved.message();
  // The dictionary is a zstd dictionary that shrinks ONNX graph text.
  EXPECT_EQ(GraphDictionary().size(), 16384u);
  const std::string graph(200, 'x');
  EXPECT_FALSE(ZstdCompress(std::span(reinterpret_cast<const uint8_t*>(graph.data()), graph.size()), 19, true).empty());
}

TEST(Container, BadCodeTablesAreNamed) {
  // A Huffman stream whose table has three one-bit codes.
  ArtifactContents c;
  PendingTensor t;
  t.name = "t";
  t.dtype = kI8;
  t.shape = {4};
  t.encoder = Encoder::kWhole;
  CodeLengths three_one_bit{};
  three_one_bit[0] = three_one_bit[1] = three_one_bit[2] = 1;
  t.payload = {static_cast<uint8_t>(StreamMode::kHuffman), 4};
  WriteTable(three_one_bit, &t.payload);
  t.payload.insert(t.payload.end(), {1, 0x00});
  c.tensors.push_back(t);
  EncodeStream(std::vector<uint8_t>{1, 2, 3}, {}, &c.skeleton);
  const auto a = SerializeArtifact(c);
  const Status st = ReadAll(a);
  EXPECT_EQ(st.code(), StatusCode::kCorrupt);
  EXPECT_NE(st.message().find("tensor 't'"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("oversubscribed"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace modelpress::pack
