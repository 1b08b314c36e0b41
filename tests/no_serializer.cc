// Must NOT compile: a stream of a type without a serializer. The test `no_serializer_error`
// checks that the compiler says what is missing (tests/CMakeLists.txt).
#include "sluice/sluice.h"

struct Opaque {
  int x;
};

void Build(sluice::Pipeline& p) { p.Source(sluice::CollectionSource<Opaque>({Opaque{1}})).Print(); }
