# sluice_add_job(NAME SOURCES ... [DEPS ...] [OUTPUT_DIR dir])
# One job source file with SLUICE_JOB(...) builds two things: an executable NAME that runs the
# job on the mini-cluster, and a shared-library job binary NAME.so for `sluice run`. Output
# goes to OUTPUT_DIR (default: the current binary folder).
#
# The same function serves this tree and jobs built outside it: installed with the package,
# `find_package(Sluice)` provides it (then sluice::api is the installed library).
function(sluice_add_job name)
  cmake_parse_arguments(ARG "" "OUTPUT_DIR" "SOURCES;DEPS" ${ARGN})
  if(NOT ARG_OUTPUT_DIR)
    set(ARG_OUTPUT_DIR ${CMAKE_CURRENT_BINARY_DIR})
  endif()
  set(deps sluice::api ${ARG_DEPS})
  if(TARGET sluice_warnings)  # in this tree: our warning flags on our own jobs
    list(APPEND deps sluice_warnings)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_compile_definitions(${name} PRIVATE SLUICE_JOB_EXECUTABLE=1)
  target_compile_features(${name} PRIVATE cxx_std_20)
  target_link_libraries(${name} PRIVATE ${deps})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${ARG_OUTPUT_DIR})

  add_library(${name}_job SHARED ${ARG_SOURCES})
  target_compile_features(${name}_job PRIVATE cxx_std_20)
  target_link_libraries(${name}_job PRIVATE ${deps})
  # Hidden by default keeps the job ABI narrow; SLUICE_JOB exports its two entry points.
  # -fno-gnu-unique lets dlclose really unload the job.
  target_compile_options(${name}_job PRIVATE -fvisibility=hidden -fvisibility-inlines-hidden
                                             -fno-gnu-unique)
  set_target_properties(${name}_job PROPERTIES OUTPUT_NAME ${name} PREFIX "" SUFFIX ".so"
                                               LIBRARY_OUTPUT_DIRECTORY ${ARG_OUTPUT_DIR})
endfunction()
