#include "control_stream.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "sluice/core/mutex.h"

namespace sluice::cluster {

ControlStreamEnd RunControlStream(JobManagerClient* jobmanager, const ControlStreamOptions& options,
                                  const std::atomic<bool>& stopping,
                                  const std::function<void(HeartbeatRequest*)>& every_interval,
                                  const std::function<void(const HeartbeatReply&)>& on_answer,
                                  std::string* why) {
  grpc::ClientContext ctx;
  auto stream = jobmanager->OpenHeartbeats(&ctx);
  HeartbeatRequest beat;
  beat.set_taskmanager_id(options.taskmanager_id);
  beat.set_registration_number(options.registration_number);

  // What the reading thread saw.
  struct Answers {
    Mutex mu;
    CondVar changed;
    absl::Time last SLUICE_GUARDED_BY(mu) = absl::Now();
    bool unknown SLUICE_GUARDED_BY(mu) = false;
    bool broken SLUICE_GUARDED_BY(mu) = false;
  } answers;
  std::thread reader([&] {
    HeartbeatReply reply;
    while (stream->Read(&reply)) {
      if (reply.known() && on_answer) on_answer(reply);
      MutexLock lock(&answers.mu);
      answers.last = absl::Now();
      if (!reply.known()) {
        answers.unknown = true;
        break;
      }
    }
    {
      MutexLock lock(&answers.mu);
      answers.broken = true;
    }
    answers.changed.SignalAll();
  });

  ControlStreamEnd end = ControlStreamEnd::kStopping;
  for (;;) {
    if (stopping.load()) break;
    beat.clear_tasks();
    every_interval(&beat);
    const bool sent = stream->Write(beat);
    MutexLock lock(&answers.mu);
    if (!sent) answers.broken = true;
    answers.changed.WaitFor(
        &answers.mu, options.heartbeat_interval,
        [&]() SLUICE_REQUIRES(answers.mu) { return answers.broken || answers.unknown; });
    if (answers.unknown) {
      end = ControlStreamEnd::kUnknown;
      *why = absl::StrCat("the JobManager at ", jobmanager->address(),
                          " does not know this TaskManager's registration (it restarted, or "
                          "declared the TaskManager lost)");
      break;
    }
    if (answers.broken) {
      end = ControlStreamEnd::kBroken;
      *why = absl::StrCat("the control stream to the JobManager at ", jobmanager->address(),
                          " broke (its process ended, or the connection failed)");
      break;
    }
    const absl::Duration silent = absl::Now() - answers.last;
    if (silent > options.heartbeat_timeout) {
      end = ControlStreamEnd::kSilent;
      *why = absl::StrCat("the JobManager at ", jobmanager->address(), " has not answered for ",
                          absl::FormatDuration(silent));
      break;
    }
  }
  ctx.TryCancel();
  reader.join();
  stream->Finish();
  return end;
}

}  // namespace sluice::cluster
