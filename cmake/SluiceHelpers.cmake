# Helpers shared by every module: warning flags on our own code only, library, test and job
# targets.

# Our warnings go on an INTERFACE target linked PRIVATE, so generated code and users of the
# installed headers do not inherit -Werror.
add_library(sluice_warnings INTERFACE)
target_compile_options(sluice_warnings INTERFACE -Wall -Wextra -Werror)

# sluice_add_library(NAME [SHARED|INTERFACE] [DIR folder] SOURCES ... DEPS ... PRIVATE_DEPS ...)
# Creates target sluice_NAME with alias sluice::NAME. Its public headers are under
# DIR/include/ (DIR defaults to the current folder, relative to it otherwise); the current
# folder is its private include root.
function(sluice_add_library name)
  cmake_parse_arguments(ARG "SHARED;INTERFACE" "DIR" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  set(target sluice_${name})
  set(public_headers ${CMAKE_CURRENT_SOURCE_DIR}/include)
  if(ARG_DIR)
    set(public_headers ${CMAKE_CURRENT_SOURCE_DIR}/${ARG_DIR}/include)
  endif()
  if(ARG_INTERFACE)
    add_library(${target} INTERFACE)
    target_include_directories(${target} INTERFACE $<BUILD_INTERFACE:${public_headers}>
                                                $<INSTALL_INTERFACE:include>)
    target_link_libraries(${target} INTERFACE ${ARG_DEPS})
  else()
    if(ARG_SHARED)
      add_library(${target} SHARED ${ARG_SOURCES})
    else()
      add_library(${target} STATIC ${ARG_SOURCES})
    endif()
    target_include_directories(${target} PUBLIC $<BUILD_INTERFACE:${public_headers}>
                                                $<INSTALL_INTERFACE:include>
                                         PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
    target_link_libraries(${target} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS} sluice_warnings)
  endif()
  # One record of where a library's public headers are: the in-tree compile checks read the
  # global list, the install rules (cmake/SluiceInstall.cmake) the target's own.
  set_property(GLOBAL APPEND PROPERTY SLUICE_PUBLIC_HEADER_DIRS ${public_headers})
  set_property(TARGET ${target} PROPERTY SLUICE_PUBLIC_HEADERS ${public_headers})
  # Installed as sluice::NAME too (cmake/SluiceInstall.cmake).
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${name})
  add_library(sluice::${name} ALIAS ${target})
endfunction()

include(GoogleTest)

# sluice_add_test(NAME SOURCES ... DEPS ... LABELS ... [TIMEOUT seconds])
function(sluice_add_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} sluice::testing GTest::gtest GTest::gmock
                                        GTest::gtest_main sluice_warnings)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  set(environment "")
  if(SLUICE_TSAN)
    # Also reaches the job processes a test starts (they inherit the environment). Debian's
    # gRPC, Abseil, RocksDB and snappy are not built with TSan: accesses its interceptors see
    # from those modules are ignored (races in our own, instrumented code are still found).
    set(environment
        "TSAN_OPTIONS=suppressions=${CMAKE_SOURCE_DIR}/cmake/tsan.supp:ignore_noninstrumented_modules=1")
  endif()
  # One ctest entry per test case (listed when ctest runs, so building runs nothing): a
  # failure names its case, and -L/-R pick cases.
  gtest_discover_tests(${name}
    TEST_PREFIX "${name}."
    DISCOVERY_MODE PRE_TEST
    PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT} ENVIRONMENT "${environment}")
endfunction()

include(SluiceJob)
