#pragma once

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "proto/jobmanager_service.pb.h"
#include "sluice/jobmanager/blob_store.h"

namespace sluice::cluster {

/// The JobManager's side of blob transfers: uploads arrive as a stream of chunks (the first
/// announcing hash and size) and become one verified blob; downloads go out in 1 MiB chunks.
/// Independent of gRPC: the service passes its stream's read and write as functions.
class BlobServer {
 public:
  explicit BlobServer(BlobStore* store) : store_(store) {}  // `store` outlives this

  /// Stores the chunks `next` yields (false: the stream ended) as one blob; nothing stays if
  /// the upload is incomplete or does not match what its first chunk announced.
  absl::StatusOr<BlobId> Receive(const std::function<bool(UploadBlobRequest*)>& next);
  /// Sends blob `sha256` through `write` (false: the receiver went away, CANCELLED).
  absl::Status Send(const std::string& sha256,
                    const std::function<bool(const DownloadBlobReply&)>& write) const;

 private:
  BlobStore* const store_;
};

}  // namespace sluice::cluster
