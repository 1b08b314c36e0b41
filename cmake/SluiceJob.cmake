# sluice_add_job(NAME SOURCES ... [DEPS ...] [OUTPUT_DIR dir])
# One job source file with SLUICE_JOB(...) builds two things: an executable NAME that runs the
# job on the mini-cluster, and a shared-library job binary NAME.so for `sluice run`. Output
# goes to OUTPUT_DIR (default: the current binary folder).
#
# The same function serves this tree and jobs built outside it: installed with the package,
# `find_package(Sluice)` provides it (then sluice::api is the installed library).
function(sluice_add_job name)
  sluice_user_target_arguments_(${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_compile_definitions(${name} PRIVATE SLUICE_JOB_EXECUTABLE=1)
  target_compile_features(${name} PRIVATE cxx_std_20)
  target_link_libraries(${name} PRIVATE ${deps})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${ARG_OUTPUT_DIR})

  sluice_user_library_(${name}_job ${name} ${ARG_OUTPUT_DIR} "${ARG_SOURCES}" "${deps}")
endfunction()

# A library that Sluice loads with dlopen (a job binary, a state repair), NAME.so in DIR.
function(sluice_user_library_ target name dir sources deps)
  add_library(${target} SHARED ${sources})
  target_compile_features(${target} PRIVATE cxx_std_20)
  target_link_libraries(${target} PRIVATE ${deps})
  # Hidden by default keeps the ABI narrow; SLUICE_JOB and SLUICE_STATE_REPAIR export their
  # entry points. -fno-gnu-unique lets dlclose really unload the library.
  target_compile_options(${target} PRIVATE -fvisibility=hidden -fvisibility-inlines-hidden
                                           -fno-gnu-unique)
  set_target_properties(${target} PROPERTIES OUTPUT_NAME ${name} PREFIX "" SUFFIX ".so"
                                             LIBRARY_OUTPUT_DIRECTORY ${dir})
endfunction()

# sluice_add_state_repair(NAME SOURCES ... [DEPS ...] [OUTPUT_DIR dir])
# A state repair library NAME.so (one source file with SLUICE_STATE_REPAIR(...)) for
# `sluice savepoint rewrite PATH OUT --with=NAME.so`.
function(sluice_add_state_repair name)
  sluice_user_target_arguments_(${ARGN})
  sluice_user_library_(${name} ${name} ${ARG_OUTPUT_DIR} "${ARG_SOURCES}" "${deps}")
endfunction()

# The arguments of sluice_add_job and sluice_add_state_repair: ARG_SOURCES, ARG_OUTPUT_DIR
# (default: the current binary folder) and `deps` (the job API and ARG_DEPS).
macro(sluice_user_target_arguments_)
  cmake_parse_arguments(ARG "" "OUTPUT_DIR" "SOURCES;DEPS" ${ARGN})
  if(NOT ARG_OUTPUT_DIR)
    set(ARG_OUTPUT_DIR ${CMAKE_CURRENT_BINARY_DIR})
  endif()
  set(deps sluice::api ${ARG_DEPS})
  if(TARGET sluice_warnings)  # in this tree: our warning flags on our own code
    list(APPEND deps sluice_warnings)
  endif()
endmacro()
