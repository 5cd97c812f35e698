# cmake/library.cmake — the installable library (included by the top-level CMakeLists.txt).
#
#   tilec_shared  libtilec.so.MAJOR.MINOR.PATCH, SONAME libtilec.so.MAJOR: every object of
#                 tilec_core with LLVM linked in statically; only tilec_* is exported
#                 (api/libtilec.map), so an engine sees the public API and nothing else
#   tilec_engine  examples/engine.c, the toy engine, linked against libtilec.so
# `cmake --install` puts libtilec.so*, libtilec.a (tilec_core's objects; a static consumer also
# links LLVM 19, SQLite and libstdc++, as tilec.pc's Libs.private and tilec::tilec_static say),
# include/tilec/tilec.h, lib/pkgconfig/tilec.pc and lib/cmake/tilec/ (find_package(tilec) gives
# tilec::tilec) in place.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# A shared library needs a source of its own; everything else comes from tilec_core.
file(CONFIGURE OUTPUT ${CMAKE_BINARY_DIR}/gen/tilec_shared.c
     CONTENT "/* libtilec.so: the objects of tilec_core (cmake/library.cmake). */\ntypedef int tilec_shared_unit;\n")
add_library(tilec_shared SHARED ${CMAKE_BINARY_DIR}/gen/tilec_shared.c)
target_link_libraries(tilec_shared PRIVATE "$<LINK_LIBRARY:WHOLE_ARCHIVE,tilec_core>")
target_link_options(tilec_shared PRIVATE
                    -Wl,--version-script=${PROJECT_SOURCE_DIR}/api/libtilec.map)
# Every symbol resolved at link time, except in sanitizer builds: clang puts the sanitizer
# runtime into executables only, so a sanitized (or fuzz) build of it leaves __asan_* etc. to them.
if(NOT TILEC_SANITIZE AND NOT TILEC_FUZZ)
  target_link_options(tilec_shared PRIVATE -Wl,--no-undefined)
endif()
set_target_properties(tilec_shared PROPERTIES
                      OUTPUT_NAME tilec VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}
                      LINK_DEPENDS ${PROJECT_SOURCE_DIR}/api/libtilec.map C_VISIBILITY_PRESET hidden)
target_include_directories(tilec_shared INTERFACE ${PROJECT_SOURCE_DIR}/include)

install(TARGETS tilec_shared LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES $<TARGET_FILE:tilec_core> DESTINATION ${CMAKE_INSTALL_LIBDIR} RENAME libtilec.a)
install(FILES ${PROJECT_SOURCE_DIR}/include/tilec/tilec.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/tilec)

# What a static consumer links besides libtilec.a.
find_package(SQLite3 QUIET)
set(TILEC_STATIC_DEPS ${llvm_libfiles} ${llvm_system_libs})
set(pc_private "")
foreach(lib IN LISTS TILEC_STATIC_DEPS)
  if(lib MATCHES "^/")
    string(APPEND pc_private " ${lib}")
  else()
    string(APPEND pc_private " -l${lib}")
  endif()
endforeach()
string(APPEND pc_private " -lsqlite3 -lstdc++ -lpthread -ldl -lm")
# Relocatable: the prefix is found from the .pc file's own place (cmake --install --prefix).
file(RELATIVE_PATH TILEC_PREFIX_FROM_PC /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
string(REGEX REPLACE "/$" "" TILEC_PREFIX_FROM_PC "${TILEC_PREFIX_FROM_PC}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/tilec.pc.in ${CMAKE_BINARY_DIR}/tilec.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/tilec.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

set(TILEC_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/tilec)
file(RELATIVE_PATH TILEC_PREFIX_FROM_CONFIG /${TILEC_CMAKE_DIR} /)
string(REPLACE ";" " " TILEC_STATIC_DEPS_TEXT "${TILEC_STATIC_DEPS}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/tilecConfig.cmake.in
               ${CMAKE_BINARY_DIR}/tilecConfig.cmake @ONLY)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/tilecConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/tilecConfig.cmake ${CMAKE_BINARY_DIR}/tilecConfigVersion.cmake
        DESTINATION ${TILEC_CMAKE_DIR})

if(EXISTS ${PROJECT_SOURCE_DIR}/examples/engine.c)
  add_executable(tilec_engine ${PROJECT_SOURCE_DIR}/examples/engine.c)
  target_link_libraries(tilec_engine PRIVATE tilec_shared ${CMAKE_DL_LIBS})
endif()
