#pragma once

// Everything a job needs: the pipeline builder and streams, function interfaces, keyed
// state, serializers, the built-in sources and sinks, and SLUICE_JOB.

#include "sluice/api/datastream.h"
#include "sluice/api/job.h"
#include "sluice/api/pipeline.h"
#include "sluice/api/windowed_stream.h"
#include "sluice/connectors/async_http_client.h"
#include "sluice/connectors/collect.h"
#include "sluice/connectors/collection.h"
#include "sluice/connectors/generator.h"
#include "sluice/connectors/influxdb.h"
#include "sluice/connectors/kafka.h"
#include "sluice/connectors/postgres.h"
#include "sluice/connectors/print.h"
#include "sluice/connectors/socket_text.h"
#include "sluice/connectors/text_file.h"
#include "sluice/core/format.h"
#include "sluice/core/time.h"
#include "sluice/eventtime/watermark_strategy.h"
#include "sluice/function/async_function.h"
#include "sluice/function/functions.h"
#include "sluice/serialization/serializer.h"
#include "sluice/state/descriptors.h"
#include "sluice/state/state.h"
