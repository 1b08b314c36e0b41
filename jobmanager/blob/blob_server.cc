#include "blob/blob_server.h"

#include <fstream>
#include <vector>

#include "sluice/core/status_macros.h"

namespace sluice::cluster {

namespace {
constexpr size_t kChunkBytes = 1 << 20;
}  // namespace

absl::StatusOr<BlobId> BlobServer::Receive(const std::function<bool(UploadBlobRequest*)>& next) {
  UploadBlobRequest chunk;
  if (!next(&chunk)) return absl::InvalidArgumentError("an upload without any chunk");
  SLUICE_ASSIGN_OR_RETURN(auto upload, store_->BeginUpload(BlobId{chunk.sha256(), chunk.size()}));
  do {
    if (absl::Status s = (upload)->Write(chunk.data()); !s.ok()) return s;
  } while (next(&chunk));
  // The stream ended: complete, or the client went away midway (then Commit refuses and the
  // partial file is deleted with the upload).
  return (upload)->Commit();
}

absl::Status BlobServer::Send(const std::string& sha256,
                              const std::function<bool(const DownloadBlobReply&)>& write) const {
  SLUICE_ASSIGN_OR_RETURN(auto path, store_->PathOf(sha256));
  std::ifstream in(path, std::ios::binary);
  std::vector<char> buffer(kChunkBytes);
  DownloadBlobReply chunk;
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    chunk.set_data(buffer.data(), static_cast<size_t>(in.gcount()));
    if (chunk.data().empty()) break;
    if (!write(chunk)) return absl::CancelledError("the receiver went away");
  }
  return absl::OkStatus();
}

}  // namespace sluice::cluster
