#include "blob/blob_server.h"

#include <filesystem>

#include "absl/strings/ascii.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sluice/jobmanager/sha256.h"
#include "sluice/testing/test_util.h"

namespace sluice::cluster {
namespace {

using ::testing::HasSubstr;

std::string HashOf(const std::string& data) {
  Sha256 h;
  h.Update(data);
  return h.HexDigest();
}

/// The chunks of an upload of `data`, `chunk_bytes` each, the first announcing the blob.
std::vector<UploadBlobRequest> ChunksOf(const std::string& data, const std::string& announced_hash,
                                        size_t chunk_bytes) {
  std::vector<UploadBlobRequest> chunks;
  for (size_t at = 0; at < data.size(); at += chunk_bytes) {
    UploadBlobRequest c;
    if (chunks.empty()) {
      c.set_sha256(announced_hash);
      c.set_size(static_cast<int64_t>(data.size()));
    }
    c.set_data(data.substr(at, chunk_bytes));
    chunks.push_back(c);
  }
  return chunks;
}

std::function<bool(UploadBlobRequest*)> Stream(const std::vector<UploadBlobRequest>& chunks,
                                               size_t stop_after) {
  auto next = std::make_shared<size_t>(0);
  return [chunks, stop_after, next](UploadBlobRequest* out) {
    if (*next >= chunks.size() || *next >= stop_after) return false;
    *out = chunks[(*next)++];
    return true;
  };
}

TEST(BlobServerTest, AnUploadComesBackInMegabyteChunks) {
  testing::TempDir dir;
  auto store = BlobStore::Open(dir.Join("blobs"));
  ASSERT_OK(store);
  BlobServer server(store->get());
  std::string data(2'500'000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7919 % 251);
  const auto chunks = ChunksOf(data, HashOf(data), 300'000);
  auto id = server.Receive(Stream(chunks, chunks.size()));
  ASSERT_OK(id);
  EXPECT_EQ(id->sha256, HashOf(data));
  std::string back;
  std::vector<size_t> sizes;
  ASSERT_OK(server.Send(id->sha256, [&](const DownloadBlobReply& c) {
    back += c.data();
    sizes.push_back(c.data().size());
    return true;
  }));
  EXPECT_EQ(back, data);
  EXPECT_EQ(sizes, (std::vector<size_t>{1 << 20, 1 << 20, 2'500'000 - (2 << 20)}));
}

TEST(BlobServerTest, AnIncompleteOrForgedUploadLeavesNothing) {
  testing::TempDir dir;
  auto store = BlobStore::Open(dir.Join("blobs"));
  ASSERT_OK(store);
  BlobServer server(store->get());
  const std::string data(100'000, 'x');
  const auto chunks = ChunksOf(data, HashOf(data), 10'000);
  EXPECT_FALSE(server.Receive(Stream(chunks, 4)).ok()) << "the client went away midway";
  const auto forged = ChunksOf(data, HashOf("something else"), 10'000);
  EXPECT_FALSE(server.Receive(Stream(forged, forged.size())).ok());
  EXPECT_EQ(server.Receive(Stream({}, 0)).status().message(), "an upload without any chunk");
  EXPECT_EQ((*store)->Count(), 0);
  EXPECT_TRUE(std::filesystem::is_empty(dir.Join("blobs")));
  EXPECT_EQ(server.Send(HashOf(data), [](const DownloadBlobReply&) { return true; }).code(),
            absl::StatusCode::kNotFound);
}

TEST(BlobServerTest, HostileNamesAndOversizedBlobsAreRefusedAndWriteNothing) {
  testing::TempDir dir;
  auto store = BlobStore::Open(dir.Join("blobs"));
  ASSERT_OK(store);
  BlobServer server(store->get());
  const std::string data = "#!/bin/sh\nexit 0\n";
  const std::string hash = HashOf(data);
  for (const std::string& name :
       {std::string("../") + hash.substr(3), "/tmp/" + hash.substr(5), hash.substr(0, 63) + "/",
        hash.substr(0, 60) + "/../", absl::AsciiStrToUpper(hash), hash + "0", std::string()}) {
    auto r = server.Receive(Stream(ChunksOf(data, name, 100), 1));
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(r.status().message(), HasSubstr("is not a SHA-256")) << name;
    EXPECT_EQ((*store)->PathOf(name).status().code(), absl::StatusCode::kInvalidArgument) << name;
  }
  UploadBlobRequest huge;
  huge.set_sha256(hash);
  huge.set_size(BlobStore::kMaxBlobBytes + 1);
  huge.set_data(data);
  auto r = server.Receive(Stream({huge}, 1));
  EXPECT_THAT(r.status().message(), HasSubstr("larger than the limit"));
  // Nothing was written, in the store or next to it.
  EXPECT_TRUE(std::filesystem::is_empty(dir.Join("blobs")));
  std::vector<std::string> beside;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    beside.push_back(e.path().filename().string());
  }
  EXPECT_EQ(beside, std::vector<std::string>{"blobs"});
}

TEST(BlobServerTest, ADownloadWhoseReceiverLeftIsCanceled) {
  testing::TempDir dir;
  auto store = BlobStore::Open(dir.Join("blobs"));
  ASSERT_OK(store);
  BlobServer server(store->get());
  const std::string data(3 << 20, 'y');
  const auto chunks = ChunksOf(data, HashOf(data), 1 << 20);
  ASSERT_OK(server.Receive(Stream(chunks, chunks.size())));
  int written = 0;
  absl::Status s =
      server.Send(HashOf(data), [&](const DownloadBlobReply&) { return ++written < 2; });
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(std::string(s.message()), HasSubstr("the receiver went away"));
  EXPECT_EQ(written, 2);
}

}  // namespace
}  // namespace sluice::cluster
