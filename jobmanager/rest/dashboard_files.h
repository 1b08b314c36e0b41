#pragma once

#include <cstddef>

namespace sluice::cluster {

/// A file of the web dashboard (rest/dashboard/), compiled into the JobManager so that it
/// serves it with nothing to build or install on the user's side.
struct DashboardFile {
  const char* name;  // "index.html"
  const char* content_type;
  const char* content;
};

extern const DashboardFile kDashboardFiles[];
extern const size_t kDashboardFileCount;

}  // namespace sluice::cluster
