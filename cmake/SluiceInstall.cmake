# What `cmake --install build --prefix PREFIX` and the Debian package (`cpack -G DEB` in the
# build folder) install: the three programs, the job API's libraries and public headers, and
# the CMake package that lets a job outside this tree say find_package(Sluice) and
# sluice_add_job(NAME SOURCES ...). The JobManager's and TaskManager's own libraries are
# static, inside their programs.
include(CMakePackageConfigHelpers)

set(sluice_libraries sluice_engine sluice_operators sluice_connectors sluice_kafka sluice_influx
                     sluice_http sluice_postgres sluice_api)
install(TARGETS ${sluice_libraries} EXPORT SluiceTargets
        LIBRARY DESTINATION lib
        INCLUDES DESTINATION include)
install(TARGETS sluice sluice-jobmanager sluice-taskmanager RUNTIME DESTINATION bin)
foreach(library ${sluice_libraries})
  get_target_property(headers ${library} SLUICE_PUBLIC_HEADERS)
  install(DIRECTORY ${headers}/ DESTINATION include)
endforeach()

set(config_dir lib/cmake/Sluice)
install(EXPORT SluiceTargets NAMESPACE sluice:: DESTINATION ${config_dir})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/SluiceConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/SluiceConfig.cmake
                              INSTALL_DESTINATION ${config_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/SluiceConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/SluiceConfig.cmake
              ${PROJECT_BINARY_DIR}/SluiceConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/SluiceJob.cmake
        DESTINATION ${config_dir})

# The Debian package: sluice_VERSION_amd64.deb, everything above under /usr. Its runtime
# dependencies come from dpkg-shlibdeps; building jobs needs Abseil's headers and CMake too.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME sluice)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "Sluice: a distributed dataflow engine (mini-cluster, JobManager, TaskManager, job API)")
set(CPACK_PACKAGE_CONTACT "Sluice engineers <sluice@localhost>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE amd64)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${CMAKE_LIBRARY_OUTPUT_DIRECTORY})
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libabsl-dev, cmake, g++")
include(CPack)
