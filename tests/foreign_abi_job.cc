// A valid job compiled with a foreign engine ABI string (see tests/CMakeLists.txt).
#include "sluice/sluice.h"

void Build(sluice::Pipeline& p) { p.Source(sluice::CollectionSource<int>({1})).Print(); }

SLUICE_JOB(Build)
